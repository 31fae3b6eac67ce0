//! All ranges and probabilities of the second-order degradation (SPEC §5,
//! `train_realesrnet_x4plus.yml`). A stage set to `None` is skipped, which
//! is how single stages are switched off for ablations and tests.

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
        }
    }
}

impl Default for DegradeConfig {
    fn default() -> Self {
        Self::realesrgan()
    }
}
