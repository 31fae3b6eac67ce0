//! Colour correction of the SR result against the bicubic-upsampled LR
//! image (StableSR's post-processing), applied after the AE decoder.

pub mod adain;
pub mod wavelet;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use adain::adaptive_instance_normalization;
pub use wavelet::{wavelet_blur, wavelet_decomposition, wavelet_reconstruction};

/// Which colour fix the pipeline applies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ColorFix {
    /// StableSR's default, and the paper's choice (SPEC section 4).
    #[default]
    Wavelet,
    Adain,
    None,
}

impl ColorFix {
    /// Correct `sr` against `reference` (both NCHW, same value range). The
    /// result is not clamped: the caller knows whether that is [0, 1] or [-1, 1].
    pub fn apply(self, sr: &Tensor, reference: &Tensor) -> Result<Tensor> {
        match self {
            ColorFix::Wavelet => wavelet_reconstruction(sr, reference),
            ColorFix::Adain => adaptive_instance_normalization(sr, reference),
            ColorFix::None => Ok(sr.shallow_clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_config_files() {
        assert_eq!(
            serde_json::to_string(&ColorFix::Adain).unwrap(),
            "\"adain\""
        );
        assert_eq!(
            serde_json::from_str::<ColorFix>("\"wavelet\"").unwrap(),
            ColorFix::Wavelet
        );
        assert_eq!(
            serde_json::from_str::<ColorFix>("\"none\"").unwrap(),
            ColorFix::None
        );
    }
}
