//! The benchmark's input when the user gives none: a crop of a validation
//! image, MATLAB-bicubic downscaled (a real photo's texture mix decides how
//! PGS groups its patches, so it is preferred), or else a procedural image.

use super::pairs::centre_crop;
use crate::imageio::load_image;
use crate::resize::matlab::imresize;
use crate::train::data::ImageFolder;
use anyhow::{ensure, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A `size` x `size` LR (1,3,size,size) in [0,1] and a sentence saying what it is.
pub fn bench_input(size: i64, data: &Path, scale: i64) -> (Tensor, String) {
    match from_validation_image(size, data, scale) {
        Ok(found) => found,
        Err(e) => (
            procedural(size),
            format!("procedural {size}x{size} image (sinusoids, edges and a gradient); no validation image: {e:#}"),
        ),
    }
}

fn from_validation_image(size: i64, data: &Path, scale: i64) -> Result<(Tensor, String)> {
    let folder = ImageFolder::open(data, Some("val"))?;
    let path = &folder.files()[0];
    let img = load_image(path, 1 << 28)?.rgb;
    let side = (size * scale).min(img.size()[2]).min(img.size()[3]);
    ensure!(side >= size, "{} is smaller than {size} px", path.display());
    let crop = centre_crop(&img, side).squeeze_dim(0);
    let lr = imresize(&crop, size as f64 / side as f64).narrow(1, 0, size).narrow(2, 0, size);
    let lr = ((lr * 255.0).round() / 255.0).clamp(0.0, 1.0).unsqueeze(0);
    let what = format!("{}: centre {side}x{side} crop, MATLAB-bicubic downscaled to {size}x{size}", path.display());
    Ok((lr, what))
}

/// Smooth areas, fine periodic texture and hard edges in one picture, so
/// every PGS group gets patches.
pub fn procedural(size: i64) -> Tensor {
    let opts = (Kind::Float, Device::Cpu);
    let t = Tensor::arange(size, opts) / size as f64;
    let y = t.view([size, 1]);
    let x = t.view([1, size]);
    let tau = std::f64::consts::TAU;
    let fine = ((&x * 40.0 + &y * 25.0) * tau).sin() * 0.2;
    let rings = (((&x - 0.7).square() + (&y - 0.3).square()).sqrt() * 30.0 * tau).cos() * 0.15;
    let edges = ((&x * 4.0).floor() + (&y * 4.0).floor()).remainder(2.0) * 0.3;
    let smooth = &x * 0.3 + &y * 0.2;
    let left = x.lt(0.5).to_kind(Kind::Float);
    let r = (&smooth + &fine * &left + 0.2).clamp(0.0, 1.0);
    let g = (&smooth + &rings + 0.25).clamp(0.0, 1.0);
    let b = (&edges + &smooth * 0.5 + 0.1).clamp(0.0, 1.0);
    let img = Tensor::stack(&[r, g, b], 0).unsqueeze(0);
    (img * 255.0).round() / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falls_back_to_a_procedural_image_and_says_so() {
        let d = tempfile::tempdir().unwrap();
        let (img, what) = bench_input(40, d.path(), 4);
        assert_eq!(img.size(), [1, 3, 40, 40]);
        assert!(what.starts_with("procedural"), "{what}");
        assert!(img.std(false).double_value(&[]) > 0.05, "not a flat image");
    }

    #[test]
    fn uses_the_first_validation_image() {
        let d = tempfile::tempdir().unwrap();
        image::RgbImage::from_fn(100, 90, |x, y| image::Rgb([x as u8, y as u8, 50])).save(d.path().join("v.png")).unwrap();
        std::fs::write(d.path().join("manifest.csv"), "file,split\nv.png,val\n").unwrap();
        let (img, what) = bench_input(20, d.path(), 4);
        assert_eq!(img.size(), [1, 3, 20, 20]);
        assert!(what.contains("v.png") && what.contains("80x80"), "{what}");
    }
}
