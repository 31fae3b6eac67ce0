//! JPEG round trip. Real-ESRGAN uses a differentiable JPEG (DiffJPEG) with
//! a float quality; here the `image` crate's baseline encoder and decoder
//! run at the rounded integer quality. Not bit-exact with libjpeg / OpenCV,
//! but the same kind of blocking and ringing.

use anyhow::{ensure, Context, Result};
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageFormat};
use tch::{Kind, Tensor};

/// 8-bit interleaved RGB bytes of `img` (1, 3, H, W) in [0, 1].
pub fn to_rgb8(img: &Tensor) -> Result<(Vec<u8>, u32, u32)> {
    let (_, c, h, w) = img.size4()?;
    ensure!(c == 3, "expected 3 channels, got {c}");
    let hwc = (img.get(0) * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous();
    Ok((Vec::try_from(hwc.flatten(0, -1))?, w as u32, h as u32))
}

/// (1, 3, H, W) f32 in [0, 1] from interleaved 8-bit RGB.
pub fn from_rgb8(bytes: &[u8], width: u32, height: u32) -> Tensor {
    Tensor::from_slice(bytes)
        .view([height as i64, width as i64, 3])
        .permute([2, 0, 1])
        .to_kind(Kind::Float)
        .unsqueeze(0)
        / 255.0
}

/// Compresses `img` (1, 3, H, W) in [0, 1] at `quality` (1..=100) and
/// decodes it again.
pub fn jpeg_round_trip(img: &Tensor, quality: u8) -> Result<Tensor> {
    let (rgb, w, h) = to_rgb8(img)?;
    let mut encoded = Vec::new();
    JpegEncoder::new_with_quality(&mut encoded, quality.clamp(1, 100))
        .encode(&rgb, w, h, ExtendedColorType::Rgb8)
        .with_context(|| format!("JPEG-encoding a {w}x{h} image at quality {quality}"))?;
    let decoded = image::load_from_memory_with_format(&encoded, ImageFormat::Jpeg)
        .context("decoding the JPEG just encoded")?
        .to_rgb8();
    Ok(from_rgb8(decoded.as_raw(), w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient() -> Tensor {
        let ramp = Tensor::linspace(0.0, 1.0, 40, (Kind::Float, tch::Device::Cpu));
        Tensor::stack(
            &[
                ramp.outer(&ramp),
                ramp.outer(&ramp.flip([0])),
                ramp.view([40, 1]).expand([40, 40], false),
            ],
            0,
        )
        .unsqueeze(0)
    }

    #[test]
    fn round_trip_keeps_size_and_loses_more_at_low_quality() {
        let img = (gradient() * 255.0).round() / 255.0;
        let hi = jpeg_round_trip(&img, 95).unwrap();
        let lo = jpeg_round_trip(&img, 10).unwrap();
        assert_eq!(hi.size(), img.size());
        let err = |x: &Tensor| (x - &img).abs().mean(Kind::Double).double_value(&[]);
        assert!(err(&hi) < 0.02, "q95 error {}", err(&hi));
        assert!(err(&lo) > err(&hi));
    }

    #[test]
    fn rgb8_conversion_round_trips() {
        let img = (gradient() * 255.0).round() / 255.0;
        let (bytes, w, h) = to_rgb8(&img).unwrap();
        assert!(from_rgb8(&bytes, w, h).equal(&img));
    }
}
