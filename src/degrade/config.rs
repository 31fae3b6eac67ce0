//! All ranges and probabilities of the second-order degradation (SPEC §5,
//! `train_realesrnet_x4plus.yml`), and of the light one-stage degradation
//! (SPEC §7). A stage set to `None` is skipped, which is how single stages
//! are switched off for ablations and tests.

use super::noise::NoiseConfig;
use super::random_kernel::{uniform, weighted_index, BlurConfig};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A random rescale: up / down / keep with `probs`, the factor drawn from
/// `[1, range.1]` when up and `[range.0, 1]` when down.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResizeConfig {
    pub probs: [f64; 3],
    pub range: (f64, f64),
}

impl ResizeConfig {
    pub fn draw_scale(&self, rng: &mut impl Rng) -> f64 {
        match weighted_index(rng, &self.probs) {
            0 => uniform(rng, (1.0, self.range.1)),
            1 => uniform(rng, (self.range.0, 1.0)),
            _ => 1.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DegradeConfig {
    /// Real-ESRGAN degrades the unsharp-masked HR, not the HR itself.
    pub sharpen_hr: bool,
    pub blur1: Option<BlurConfig>,
    pub resize1: Option<ResizeConfig>,
    pub noise1: Option<NoiseConfig>,
    /// JPEG quality range.
    pub jpeg1: Option<(f64, f64)>,
    /// The second blur is applied with `blur2_prob`.
    pub blur2: Option<BlurConfig>,
    pub blur2_prob: f64,
    /// Relative to the target LR size; `None` goes straight to it.
    pub resize2: Option<ResizeConfig>,
    pub noise2: Option<NoiseConfig>,
    pub jpeg2: Option<(f64, f64)>,
    /// Odd sizes of the final sinc and its probability.
    pub final_sinc_size: (usize, usize),
    pub final_sinc_prob: f64,
    /// Shrink the HR straight to the LR size with an antialiasing filter
    /// (area or MATLAB bicubic, at random) instead of torch's unfiltered
    /// modes; needs `resize1` and `resize2` off.
    #[serde(default)]
    pub antialias: bool,
}

impl DegradeConfig {
    /// Real-ESRNet / Real-ESRGAN x4plus training degradation.
    pub fn realesrgan() -> Self {
        Self {
            sharpen_hr: true,
            blur1: Some(BlurConfig::realesrgan_first()),
            resize1: Some(ResizeConfig {
                probs: [0.2, 0.7, 0.1],
                range: (0.15, 1.5),
            }),
            noise1: Some(NoiseConfig::realesrgan_first()),
            jpeg1: Some((30.0, 95.0)),
            blur2: Some(BlurConfig::realesrgan_second()),
            blur2_prob: 0.8,
            resize2: Some(ResizeConfig {
                probs: [0.3, 0.4, 0.3],
                range: (0.3, 1.2),
            }),
            noise2: Some(NoiseConfig::realesrgan_second()),
            jpeg2: Some((30.0, 95.0)),
            final_sinc_size: (7, 21),
            final_sinc_prob: 0.8,
            antialias: false,
        }
    }

    /// One mild stage: an ordinary phone or web photo shrunk for sharing,
    /// the inputs between clean bicubic and Real-ESRGAN's heavy damage.
    /// - Blur: plain Gaussians only (iso / aniso in upstream's 0.45 : 0.25
    ///   ratio), sigma 0.2..1.2 HR px, at most 0.3 LR px at x4: the softness
    ///   that lens, demosaicing and focus leave in an in-focus shot.
    ///   Defocus and motion blur (sigma up to 3), ringing and plateau
    ///   shapes stay Real-ESRGAN's. 7 or 9 taps cover at least +-2.5 sigma
    ///   of the widest blur; more would only add zeros.
    /// - Shrink: antialiased (area or MATLAB bicubic), as photo editors,
    ///   browsers and image libraries shrink; no random rescale before it.
    /// - Noise: Gaussian on the LR, sigma 0..5 /255 (at most 2 %: grain on
    ///   flat areas, not a noisy shot); gray (luminance only) half the time,
    ///   as phones remove colour noise harder than luminance noise. Poisson
    ///   and sigmas up to 30 stay Real-ESRGAN's.
    /// - JPEG quality 70..95: what cameras save and web services re-encode
    ///   with; blocking below 70 stays Real-ESRGAN's (30..95).
    /// - No sharpened HR: the photo is degraded as it is.
    pub fn light() -> Self {
        Self {
            blur1: Some(BlurConfig {
                kernel_size: (7, 9),
                sinc_prob: 0.0,
                kernel_probs: [0.45, 0.25, 0.0, 0.0, 0.0, 0.0],
                sigma: (0.2, 1.2),
                ..BlurConfig::realesrgan_first()
            }),
            noise2: Some(NoiseConfig {
                gaussian_prob: 1.0,
                gaussian_sigma: (0.0, 5.0),
                poisson_scale: (0.0, 0.0),
                gray_prob: 0.5,
            }),
            jpeg2: Some((70.0, 95.0)),
            antialias: true,
            ..Self::none()
        }
    }

    /// Every stage off: only the unavoidable resize to the LR size remains.
    pub fn none() -> Self {
        Self {
            sharpen_hr: false,
            blur1: None,
            resize1: None,
            noise1: None,
            jpeg1: None,
            blur2: None,
            blur2_prob: 0.0,
            resize2: None,
            noise2: None,
            jpeg2: None,
            final_sinc_size: (7, 21),
            final_sinc_prob: 0.0,
            antialias: false,
        }
    }
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self::realesrgan()
    }
}
