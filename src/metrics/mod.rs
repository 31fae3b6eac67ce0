//! Image-quality metrics as the SR literature computes them (BasicSR's
//! conventions): full-reference PSNR / SSIM on BT.601 luma, and the
//! no-reference NIQE.

pub mod aggd;
pub mod channels;
pub mod mscn;
pub mod mvg;
pub mod niqe;
pub mod niqe_params;
pub mod plane;
pub mod psnr;
pub mod report;
pub mod ssim;
pub mod ycbcr;

pub use channels::Channels;
pub use niqe::{niqe, NiqeParams};
pub use plane::Plane;
pub use psnr::psnr;
pub use report::psnr_ssim_y;
pub use ssim::ssim;

#[cfg(test)]
pub(crate) mod tests {
    //! The kit's images and expected values (conformance README §6).

    use image::RgbImage;

    /// The kit's tolerances.
    pub const PSNR_TOLERANCE_DB: f64 = 1e-5;
    pub const SSIM_TOLERANCE: f64 = 1e-6;

    /// A PNG of `metrics/`, or `None` where skipping is allowed.
    pub fn kit_image(name: &str) -> Option<RgbImage> {
        let path = crate::conformance::dir()?.join("metrics").join(name);
        Some(
            image::open(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
                .to_rgb8(),
        )
    }

    /// One full-reference pair and its record in `metrics.json`.
    pub struct KitPair {
        pub name: String,
        pub gt: RgbImage,
        pub distorted: RgbImage,
        record: serde_json::Value,
    }

    impl KitPair {
        pub fn expected(&self, key: &str) -> f64 {
            self.record[key]
                .as_f64()
                .unwrap_or_else(|| panic!("metrics.json lacks {key} for {}", self.name))
        }
    }

    /// The three pairs (none where skipping is allowed).
    pub fn kit_pairs() -> Vec<KitPair> {
        let Some(json) = crate::conformance::json("metrics/metrics.json") else {
            return vec![];
        };
        let pairs = json["psnr_ssim"]["pairs"]
            .as_array()
            .expect("metrics.json: psnr_ssim.pairs");
        assert_eq!(pairs.len(), 3);
        pairs
            .iter()
            .map(|record| {
                let file = |key: &str| kit_image(record[key].as_str().unwrap()).unwrap();
                KitPair {
                    name: record["gt"].as_str().unwrap().into(),
                    gt: file("gt"),
                    distorted: file("distorted"),
                    record: record.clone(),
                }
            })
            .collect()
    }
}
