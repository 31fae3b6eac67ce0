//! NIQE, the "completely blind" quality evaluator (Mittal, Soundararajan,
//! Bovik 2013), as BasicSR `calculate_niqe`: the distance between a
//! multivariate Gaussian fitted to the image's 96×96-block features and one
//! fitted to pristine natural images. Lower is more natural.

use anyhow::{ensure, Result};
use image::RgbImage;
use tch::Tensor;

use super::aggd::{block_features, FEATURES, NIQE_FEATURES};
use super::mscn::mscn;
use super::mvg::mvg_distance;
pub use super::niqe_params::NiqeParams;
use super::plane::Plane;
use super::ycbcr::y_plane;
use crate::resize::matlab::imresize;

/// Block side at the first scale (the authors' recommended size, no overlap).
const BLOCK: usize = 96;

/// NIQE of an RGB image on its Y channel, ignoring a `crop_border` px frame.
/// Needs at least 192 px one way and 96 px the other (two whole blocks).
pub fn niqe(img: &RgbImage, crop_border: u32, params: &NiqeParams) -> Result<f64> {
    let y = y_plane(img);
    let c = crop_border as usize;
    ensure!(
        2 * c < y.height && 2 * c < y.width,
        "a {c} px border crop leaves nothing of a {}x{} image",
        y.width,
        y.height
    );
    // NIQE sees 8-bit luma: Y is rounded half to even, as numpy rounds.
    let y = y
        .crop(c, c, y.height - 2 * c, y.width - 2 * c)
        .map(f32::round_ties_even);
    niqe_of_y(&y, params)
}

/// NIQE of a luma plane in [0, 255].
pub fn niqe_of_y(y: &Plane<f32>, params: &NiqeParams) -> Result<f64> {
    mvg_distance(&features(y, params)?, &params.mu_pris, &params.cov_pris)
}

/// Per-block features (rows of 36: the first scale, then the half scale).
/// The plane is cut to whole 96 px blocks from the top-left; blocks are
/// listed column by column, as BasicSR visits them.
pub fn features(y: &Plane<f32>, params: &NiqeParams) -> Result<Vec<[f64; NIQE_FEATURES]>> {
    let (rows, cols) = (y.height / BLOCK, y.width / BLOCK);
    ensure!(
        rows > 0 && cols > 0,
        "NIQE needs at least {BLOCK}x{BLOCK} pixels, got {}x{}",
        y.width,
        y.height
    );
    let full = y.crop(0, 0, rows * BLOCK, cols * BLOCK);
    let half = half_scale(&full)?;

    let mut out = vec![[0f64; NIQE_FEATURES]; rows * cols];
    for (scale, plane) in [(0, &full), (1, &half)] {
        let coeffs = mscn(plane, &params.window);
        let side = BLOCK >> scale;
        for (i, (c, r)) in (0..cols)
            .flat_map(|c| (0..rows).map(move |r| (c, r)))
            .enumerate()
        {
            let block = coeffs.crop(r * side, c * side, side, side);
            out[i][scale * FEATURES..(scale + 1) * FEATURES]
                .copy_from_slice(&block_features(&block));
        }
    }
    Ok(out)
}

/// The second scale: MATLAB-style bicubic halving of Y/255, back to [0, 255],
/// in f32 and not rounded.
pub fn half_scale(y: &Plane<f32>) -> Result<Plane<f32>> {
    let unit: Vec<f32> = y.data.iter().map(|v| v / 255.0).collect();
    let half = imresize(
        &Tensor::from_slice(&unit).view([y.height as i64, y.width as i64]),
        0.5,
    );
    let (h, w) = (half.size()[0] as usize, half.size()[1] as usize);
    let data = Vec::<f32>::try_from(&half.contiguous().view(-1))?;
    Ok(Plane::new(h, w, data.iter().map(|v| v * 255.0).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;
    use crate::metrics::tests::kit_image;

    /// The kit's NIQE tolerance; our f32-faithful arithmetic aims for 1e-5.
    const NIQE_TOLERANCE: f64 = 2e-3;

    fn kit_params() -> Option<NiqeParams> {
        Some(
            NiqeParams::load(conformance::dir()?.join("metrics/niqe_pris_params.safetensors"))
                .unwrap(),
        )
    }

    fn max_err(a: impl IntoIterator<Item = f64>, b: impl IntoIterator<Item = f64>) -> f64 {
        a.into_iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn kit_images_match_basicsr() {
        let (Some(params), Some(json)) = (kit_params(), conformance::json("metrics/metrics.json"))
        else {
            return;
        };
        for record in json["niqe"]["images"].as_array().unwrap() {
            let name = record["image"].as_str().unwrap();
            let got = niqe(&kit_image(name).unwrap(), 0, &params).unwrap();
            let err = (got - record["niqe"].as_f64().unwrap()).abs();
            eprintln!("{name}: NIQE {got:.10}, error {err:e}");
            assert!(err <= NIQE_TOLERANCE, "{name}: NIQE {got}, error {err:e}");
        }
    }

    /// Rounded Y (exact), the half-scale plane and the block features.
    #[test]
    fn intermediate_planes_and_features_match_basicsr() {
        let (Some(params), Some(kit)) = (
            kit_params(),
            conformance::load("metrics/metrics_debug.safetensors"),
        ) else {
            return;
        };
        let names = [
            "niqe0_astronaut.png",
            "niqe1_coffee.png",
            "niqe2_chelsea.png",
        ];
        for (i, name) in names.iter().enumerate() {
            let y = y_plane(&kit_image(name).unwrap()).map(f32::round_ties_even);
            let expected_y =
                Vec::<u8>::try_from(&kit[&format!("niqe{i}.y_rounded")].view(-1)).unwrap();
            assert!(
                y.data.iter().zip(&expected_y).all(|(&a, &b)| a == b as f32),
                "{name}: rounded Y differs"
            );

            let full = y.crop(0, 0, y.height / BLOCK * BLOCK, y.width / BLOCK * BLOCK);
            let expected_half =
                Vec::<f32>::try_from(&kit[&format!("niqe{i}.y_half_scale")].view(-1)).unwrap();
            let half_err = max_err(
                half_scale(&full).unwrap().data.iter().map(|&v| v as f64),
                expected_half.iter().map(|&v| v as f64),
            );

            let expected_feats =
                Vec::<f64>::try_from(&kit[&format!("niqe{i}.features")].view(-1)).unwrap();
            let feats = features(&y, &params).unwrap();
            assert_eq!(feats.len() * NIQE_FEATURES, expected_feats.len());
            let feat_err = max_err(
                feats.iter().flatten().copied(),
                expected_feats.iter().copied(),
            );
            eprintln!("{name}: half-scale max error {half_err:e}, feature max error {feat_err:e}");
            // Same libtorch on the same CPU gives 0 and ~1e-16. Another CPU may
            // take another MKL path: a few f32 ulps on the plane, ~3e-6 on the
            // features, still far below a grid step of α (1e-3).
            assert!(
                half_err <= 1e-4,
                "{name}: half-scale plane off by {half_err:e}"
            );
            // The AGGD shape alpha is a grid search in steps of 1e-3: where the
            // exact statistic lies on a cell boundary, the plane's last ulps can
            // move alpha by exactly one step (seen on a CPU without AMX), and
            // the features computed from that alpha (the next ones) follow by
            // less than a step. That is tolerated for one feature group; any
            // other error is not.
            let errs: Vec<f64> = feats
                .iter()
                .flatten()
                .zip(&expected_feats)
                .map(|(a, b)| (a - b).abs())
                .collect();
            let steps: Vec<usize> = (0..errs.len())
                .filter(|&i| errs[i] > 1e-5 && (errs[i] - 1e-3).abs() < 1e-6)
                .collect();
            let unexplained: Vec<(usize, f64)> = (0..errs.len())
                .filter(|&i| {
                    errs[i] > 1e-5
                        && !steps
                            .iter()
                            .any(|&j| j <= i && i <= j + 3 && errs[i] <= 1e-3 + 1e-9)
                })
                .map(|i| (i, errs[i]))
                .collect();
            assert!(
                unexplained.is_empty() && steps.len() <= 1,
                "{name}: features off by {feat_err:e}: alpha steps at {steps:?}, other errors {unexplained:?}"
            );
        }
    }

    #[test]
    fn too_small_images_are_errors_not_panics() {
        let params = NiqeParams::bundled();
        let err = niqe(&RgbImage::new(200, 95), 0, &params).unwrap_err();
        assert!(err.to_string().contains("96x96"), "{err}");
        // One block leaves no covariance to estimate.
        assert!(niqe(
            &RgbImage::from_fn(100, 100, |x, y| image::Rgb([(x * 7 + y * 3) as u8; 3])),
            0,
            &params
        )
        .is_err());
        assert!(niqe(&RgbImage::new(300, 300), 150, &params).is_err());
    }

    /// Timing on a 2048×2048 image (run with --ignored --nocapture).
    #[test]
    #[ignore]
    fn niqe_2048_timing() {
        let img = RgbImage::from_fn(2048, 2048, |x, y| {
            let v = ((x as f32 * 0.05).sin() * 60.0
                + (y as f32 * 0.031).cos() * 50.0
                + ((x ^ y) % 17) as f32 * 3.0
                + 120.0) as u8;
            image::Rgb([v, v.wrapping_add(20), v / 2])
        });
        let start = std::time::Instant::now();
        let score = niqe(&img, 0, &NiqeParams::bundled()).unwrap();
        eprintln!("NIQE 2048x2048: {score:.4} in {:.2?}", start.elapsed());
    }
}
