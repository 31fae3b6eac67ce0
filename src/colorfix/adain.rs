//! AdaIN colour fix: give the SR result the per-channel mean and standard
//! deviation of the reference. Cheaper and cruder than the wavelet fix; it
//! moves whole channels, so local colour shifts stay.

use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

/// Added to the variance before the square root, as StableSR does.
const EPS: f64 = 1e-5;

/// Per-(batch, channel) mean and std over H x W; unbiased variance + EPS.
fn mean_std(x: &Tensor) -> (Tensor, Tensor) {
    let flat = x.flatten(2, -1);
    let mean = flat.mean_dim(-1, true, x.kind()).unsqueeze(-1);
    let std = (flat.var_dim(-1, true, true) + EPS).sqrt().unsqueeze(-1);
    (mean, std)
}

/// (content - mean_c) / std_c * std_s + mean_s, per channel. Not clamped.
pub fn adaptive_instance_normalization(content: &Tensor, style: &Tensor) -> Result<Tensor> {
    ensure!(
        content.dim() == 4 && style.dim() == 4 && content.size()[..2] == style.size()[..2],
        "AdaIN: content {:?} and style {:?} need the same batch and channels",
        content.size(),
        style.size()
    );
    ensure!(
        matches!(content.kind(), Kind::Float | Kind::Double),
        "AdaIN: needs a float tensor, got {:?}",
        content.kind()
    );
    let (mean_c, std_c) = mean_std(content);
    let (mean_s, std_s) = mean_std(style);
    Ok((content - mean_c) / std_c * std_s + mean_s)
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
        let out = adaptive_instance_normalization(&kit["content"], &kit["style"]).unwrap();
        for (name, ours) in [
            ("adain_out_clamped", out.clamp(0.0, 1.0)),
            ("adain_out", out),
        ] {
            let err = max_abs_diff(&ours, &kit[name]);
            eprintln!("{name}: max abs err {err:e} (tol 1e-6)");
            assert!(err <= 1e-6, "{name}: {err:e}");
        }
    }

    #[test]
    fn output_takes_the_style_statistics() {
        let content = Tensor::randn([1, 3, 16, 16], (Kind::Float, tch::Device::Cpu));
        let style = Tensor::randn([1, 3, 8, 8], (Kind::Float, tch::Device::Cpu)) * 3.0 + 2.0;
        let out = adaptive_instance_normalization(&content, &style).unwrap();
        let (mo, so) = mean_std(&out);
        let (ms, ss) = mean_std(&style);
        assert!(max_abs_diff(&mo, &ms) < 1e-5 && max_abs_diff(&so, &ss) < 1e-4);
        assert!(adaptive_instance_normalization(&content, &style.narrow(1, 0, 2)).is_err());
    }
}
