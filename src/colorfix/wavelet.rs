//! StableSR's wavelet colour fix: keep the diffusion output's fine detail,
//! take its coarse colour from the bicubic-upsampled LR input.
//!
//! Diffusion in latent space drifts in colour; the LR image knows the true
//! colour but not the detail. An a-trous wavelet split (5 levels of a dilated
//! 3x3 binomial blur) separates the two without ringing.

use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

/// Dilations 1, 2, 4, 8, 16: the low band keeps structure coarser than ~32 px.
pub const LEVELS: usize = 5;

/// One level: depthwise [[1,2,1],[2,4,2],[1,2,1]]/16 with taps `radius`
/// apart, on a replicate-padded image so the size is kept. Any channel count.
pub fn wavelet_blur(image: &Tensor, radius: usize) -> Tensor {
    let channels = image.size()[1];
    let k = [1.0f32, 2.0, 1.0];
    let taps: Vec<f32> = k
        .iter()
        .flat_map(|a| k.iter().map(move |b| a * b / 16.0))
        .collect();
    let kernel = Tensor::from_slice(&taps)
        .to_kind(image.kind())
        .to_device(image.device())
        .view([1, 1, 3, 3])
        .repeat([channels, 1, 1, 1]);
    let r = radius as i64;
    image.pad([r, r, r, r], "replicate", None).conv2d(
        &kernel,
        None::<Tensor>,
        [1, 1],
        [0, 0],
        [r, r],
        channels,
    )
}

/// (high, low): the summed detail of all levels and the final blurred image;
/// high + low equals the input up to rounding.
pub fn wavelet_decomposition(image: &Tensor, levels: usize) -> (Tensor, Tensor) {
    let mut high = image.zeros_like();
    let mut low = image.shallow_clone();
    for i in 0..levels {
        let blurred = wavelet_blur(&low, 1 << i);
        high += &low - &blurred;
        low = blurred;
    }
    (high, low)
}

/// High band of `content` (the SR result) plus low band of `style` (the
/// upsampled LR). Not clamped: the caller clamps to its value range.
pub fn wavelet_reconstruction(content: &Tensor, style: &Tensor) -> Result<Tensor> {
    ensure!(
        content.dim() == 4 && content.size() == style.size(),
        "wavelet colour fix: content {:?} and style {:?} must be equal NCHW shapes",
        content.size(),
        style.size()
    );
    ensure!(
        content.kind() == style.kind() && matches!(content.kind(), Kind::Float | Kind::Double),
        "wavelet colour fix: needs float tensors of one kind"
    );
    let (high, _) = wavelet_decomposition(content, LEVELS);
    let (_, low) = wavelet_decomposition(style, LEVELS);
    Ok(high + low)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, max_abs_diff};

    #[test]
    fn matches_stablesr() {
        let Some(kit) = conformance::load("wavelet_color_fix/wavelet_color_fix.safetensors") else {
            return;
        };
        let (content, style) = (&kit["content"], &kit["style"]);
        let (high, low) = wavelet_decomposition(content, LEVELS);
        let out = wavelet_reconstruction(content, style).unwrap();
        let checks = [
            ("content_blur_radius1", wavelet_blur(content, 1)),
            ("content_high", high),
            ("content_low", low),
            ("style_low", wavelet_decomposition(style, LEVELS).1),
            ("wavelet_out_clamped", out.clamp(0.0, 1.0)),
            ("wavelet_out", out),
        ];
        for (name, ours) in checks {
            let err = max_abs_diff(&ours, &kit[name]);
            eprintln!("{name}: max abs err {err:e} (tol 1e-6)");
            assert!(err <= 1e-6, "{name}: {err:e}");
        }
    }

    #[test]
    fn works_on_latents_with_any_channel_count() {
        let x = Tensor::randn([2, 4, 9, 7], (Kind::Float, tch::Device::Cpu));
        let (high, low) = wavelet_decomposition(&x, LEVELS);
        assert_eq!(low.size(), x.size());
        assert!(max_abs_diff(&(high + low), &x) < 1e-5);
        // A constant image has no detail: the colour fix hands back the style.
        let style = Tensor::full([2, 4, 9, 7], 0.25, (Kind::Float, tch::Device::Cpu));
        let flat = Tensor::full([2, 4, 9, 7], 0.8, (Kind::Float, tch::Device::Cpu));
        assert!(max_abs_diff(&wavelet_reconstruction(&flat, &style).unwrap(), &style) < 1e-6);
        assert!(wavelet_reconstruction(&x, &style.narrow(3, 0, 6)).is_err());
    }
}
