//! NIQE's pristine model: the mean and covariance of the 36 features over
//! the NIQE authors' corpus of pristine natural images, and the 7×7 window of
//! the local statistics, as published with their MATLAB release.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use safetensors::{Dtype, SafeTensors};

use super::mscn::WINDOW;
use super::aggd::NIQE_FEATURES;

/// The pristine model and the local-statistics window, as published with
/// the authors' MATLAB release (BasicSR `niqe_pris_params.npz`).
#[derive(Clone, Debug, PartialEq)]
pub struct NiqeParams {
    pub mu_pris: Vec<f64>,
    /// 36×36, row-major.
    pub cov_pris: Vec<f64>,
    pub window: [[f64; WINDOW]; WINDOW],
}

impl NiqeParams {
    /// Reads `mu_pris_param` (1×36), `cov_pris_param` (36×36) and
    /// `gaussian_window` (7×7), all f64, from a safetensors file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading NIQE parameters {}", path.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("NIQE parameters {}", path.display()))
    }

    /// The copy shipped in `assets/` (see assets/NOTICE.md).
    pub fn bundled() -> Self {
        let bytes = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/niqe_pris_params.safetensors"
        ));
        Self::from_bytes(bytes).expect("the bundled NIQE parameters are valid")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes).context("not a safetensors file")?;
        let read = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
            let t = file
                .tensor(name)
                .with_context(|| format!("missing tensor {name}"))?;
            ensure!(
                t.dtype() == Dtype::F64 && t.shape() == shape,
                "{name} is {:?} {:?}, expected F64 {shape:?}",
                t.dtype(),
                t.shape()
            );
            Ok(t.data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect())
        };
        let window = read("gaussian_window", &[WINDOW, WINDOW])?;
        Ok(NiqeParams {
            mu_pris: read("mu_pris_param", &[1, NIQE_FEATURES])?,
            cov_pris: read("cov_pris_param", &[NIQE_FEATURES, NIQE_FEATURES])?,
            window: std::array::from_fn(|r| std::array::from_fn(|c| window[r * WINDOW + c])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_parameters_are_the_kit_file() {
        let Some(dir) = crate::conformance::dir() else {
            return;
        };
        let kit = NiqeParams::load(dir.join("metrics/niqe_pris_params.safetensors")).unwrap();
        assert_eq!(NiqeParams::bundled(), kit);
        assert!((kit.window.iter().flatten().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_parameter_files_are_errors() {
        assert!(NiqeParams::from_bytes(b"not safetensors").is_err());
        assert!(NiqeParams::load("/nonexistent/niqe.safetensors").is_err());
    }
}
