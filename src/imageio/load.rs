//! Decoding an input image into the float RGB tensor the model sees.
//!
//! Alpha and the original bit depth / colour type travel beside the RGB
//! tensor, because the model only restores colour: alpha is upscaled
//! separately and the output is written back in the input's layout.

use anyhow::{bail, Context, Result};
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// An input image, ready for the pipeline.
pub struct LoadedImage {
    pub path: PathBuf,
    /// (1, 3, H, W) in [0, 1], EXIF orientation already applied.
    pub rgb: Tensor,
    /// (1, 1, H, W) in [0, 1] when the input had an alpha channel.
    pub alpha: Option<Tensor>,
    /// The input had one (luma) channel: the output is written as gray too.
    pub gray: bool,
    /// The input had 16 bits per channel: PNG/TIFF output keeps 16 bits.
    pub sixteen_bit: bool,
}

impl LoadedImage {
    pub fn height(&self) -> i64 {
        self.rgb.size()[2]
    }
    pub fn width(&self) -> i64 {
        self.rgb.size()[3]
    }
}

/// Decodes `path`, refusing images whose pixel count exceeds `max_pixels`
/// before any pixel is decoded (a decompression bomb must not exhaust memory).
pub fn load_image(path: &Path, max_pixels: u64) -> Result<LoadedImage> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}: cannot read the file", path.display()))?;
    if meta.is_dir() {
        bail!("{}: is a folder, not an image", path.display());
    }
    if meta.len() == 0 {
        bail!("{}: the file is empty", path.display());
    }
    let reader = ImageReader::open(path)
        .with_context(|| format!("{}: cannot open", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if reader.format().is_none() {
        bail!("{}: not a supported image format (PNG, JPEG, WebP, TIFF, BMP, ...)", path.display());
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| anyhow::anyhow!("{}: cannot decode: {e}", path.display()))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        bail!("{}: the image has zero size ({w}x{h})", path.display());
    }
    if (w as u64) * (h as u64) > max_pixels {
        bail!(
            "{}: {w}x{h} is too large for the memory limit ({} input pixels at most; raise --memory-limit)",
            path.display(),
            max_pixels
        );
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| anyhow::anyhow!("{}: corrupt or truncated image: {e}", path.display()))?;
    img.apply_orientation(orientation);
    Ok(to_loaded(img, path))
}

fn to_loaded(img: DynamicImage, path: &Path) -> LoadedImage {
    let color = img.color();
    let gray = !color.has_color();
    let sixteen_bit = color.bytes_per_pixel() / color.channel_count() as u8 >= 2;
    let (w, h) = (img.width() as i64, img.height() as i64);
    let rgba = img.into_rgba32f();
    let data = Tensor::from_slice(rgba.as_raw()).view([h, w, 4]).permute([2, 0, 1]).unsqueeze(0);
    let rgb = data.narrow(1, 0, 3).contiguous().clamp(0.0, 1.0).to_kind(Kind::Float);
    let alpha = color.has_alpha().then(|| data.narrow(1, 3, 1).contiguous().clamp(0.0, 1.0));
    LoadedImage { path: path.to_path_buf(), rgb, alpha, gray, sixteen_bit }
}

/// Builds a loaded image from a tensor, for callers that synthesise inputs.
pub fn from_tensor(rgb: Tensor, path: &Path) -> LoadedImage {
    LoadedImage { path: path.to_path_buf(), rgb, alpha: None, gray: false, sixteen_bit: false }
}
