//! NIQE's quality score: how far the image's multivariate Gaussian (MVG) of
//! block features lies from the pristine one (Mittal et al., Eq. 10).

use anyhow::{Context, Result};
use tch::Tensor;

use super::aggd::NIQE_FEATURES as N;

/// NIQE is undefined for this image: fewer than two of its blocks have
/// finite features (flat blocks have no MSCN variance), so there is no
/// covariance to compare. Callers that score many images report "no NIQE".
#[derive(Debug, thiserror::Error)]
#[error("NIQE needs at least two blocks with finite features, got {clean} of {total}")]
pub struct NiqeUndefined {
    pub clean: usize,
    pub total: usize,
}

/// Eq. 10: sqrt((μp − μd)ᵀ ((Σp + Σd)/2)⁺ (μp − μd)). The image's mean
/// ignores NaN features; its covariance uses only blocks without NaN.
pub fn mvg_distance(feats: &[[f64; N]], mu_pris: &[f64], cov_pris: &[f64]) -> Result<f64> {
    let mu: Vec<f64> = (0..N)
        .map(|j| {
            let vals: Vec<f64> = feats.iter().map(|f| f[j]).filter(|v| !v.is_nan()).collect();
            vals.iter().sum::<f64>() / vals.len() as f64
        })
        .collect();
    let clean: Vec<&[f64; N]> = feats
        .iter()
        .filter(|f| f.iter().all(|v| !v.is_nan()))
        .collect();
    if clean.len() < 2 || mu.iter().any(|v| v.is_nan()) {
        return Err(NiqeUndefined { clean: clean.len(), total: feats.len() }.into());
    }

    let clean_mu: Vec<f64> = (0..N)
        .map(|j| clean.iter().map(|f| f[j]).sum::<f64>() / clean.len() as f64)
        .collect();
    let mut pooled = vec![0f64; N * N];
    for (k, v) in pooled.iter_mut().enumerate() {
        let (i, j) = (k / N, k % N);
        let cov = clean
            .iter()
            .map(|f| (f[i] - clean_mu[i]) * (f[j] - clean_mu[j]))
            .sum::<f64>()
            / (clean.len() - 1) as f64;
        *v = (cov_pris[k] + cov) / 2.0;
    }
    let inv = Tensor::from_slice(&pooled)
        .view([N as i64, N as i64])
        .f_linalg_pinv(1e-15, false)
        .context("pseudo-inverting the pooled NIQE covariance")?;
    let inv = Vec::<f64>::try_from(&inv.view(-1))?;

    let d: Vec<f64> = (0..N).map(|j| mu_pris[j] - mu[j]).collect();
    let d_inv: Vec<f64> = (0..N)
        .map(|j| (0..N).map(|i| d[i] * inv[i * N + j]).sum())
        .collect();
    Ok(d_inv.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>().sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With identity pristine covariance and features whose own covariance
    /// is known, the distance reduces to a hand-computable Mahalanobis norm.
    #[test]
    fn distance_is_the_pooled_mahalanobis_norm() {
        let identity: Vec<f64> = (0..N * N)
            .map(|k| f64::from(u8::from(k / N == k % N)))
            .collect();
        // Two blocks differing only in feature 0 by 2: sample variance 2 there.
        let mut a = [1.0; N];
        let mut b = [1.0; N];
        a[0] = 0.0;
        b[0] = 2.0;
        // Image mean is 1 everywhere; pristine mean 0 except feature 0 at 4.
        let mut mu = vec![0.0; N];
        mu[0] = 4.0;
        // Pooled covariance: 1.5 for feature 0, 0.5 elsewhere.
        let expected = (3.0f64 * 3.0 / 1.5 + (N - 1) as f64 / 0.5).sqrt();
        let got = mvg_distance(&[a, b], &mu, &identity).unwrap();
        assert!((got - expected).abs() < 1e-10, "{got} vs {expected}");
    }

    #[test]
    fn nan_blocks_are_dropped_and_too_few_blocks_fail() {
        let identity: Vec<f64> = (0..N * N)
            .map(|k| f64::from(u8::from(k / N == k % N)))
            .collect();
        let mut nan = [1.0; N];
        nan[5] = f64::NAN;
        assert!(mvg_distance(&[[1.0; N], nan], &[0.0; N], &identity).is_err());
        assert!(mvg_distance(&[[1.0; N], [2.0; N], nan], &[0.0; N], &identity).is_ok());
    }
}
