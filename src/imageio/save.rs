//! Writing the upscaled image safely: to a temporary file beside the target,
//! renamed into place only when complete, and never over an input file.

use super::{shown, LoadedImage};
use anyhow::{bail, Context, Result};
use image::{ColorType, DynamicImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Where the output for `input` goes when `out` is a folder (or is absent).
pub fn output_path_for(input: &Path, out_dir: &Path, suffix: &str) -> PathBuf {
    let stem = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    out_dir.join(format!("{stem}{suffix}.png"))
}

/// Writes `rgb` (1,3,H,W in [0,1]) with the layout of `like` (gray, alpha,
/// bit depth), in the format given by the extension of `out`.
pub fn save_image(rgb: &Tensor, alpha: Option<&Tensor>, like: &LoadedImage, out: &Path, inputs: &[PathBuf]) -> Result<()> {
    if inputs.iter().any(|i| same_file(i, out)) {
        bail!("{}: refusing to overwrite an input image", shown(out));
    }
    let format = output_format(out)?;
    let wanted = Layout { gray: like.gray, alpha: alpha.is_some(), wide: like.sixteen_bit };
    let layout = wanted.storable_in(format, out)?;
    let img = to_dynamic(rgb, alpha, layout);
    let suffix = format!(".{}", out.extension().unwrap_or_default().to_string_lossy());
    let tmp = crate::atomic::temp_file_in(crate::atomic::parent_dir(out), &suffix)?;
    img.save_with_format(tmp.path(), format)
        .with_context(|| format!("{}: cannot encode the output", shown(out)))?;
    tmp.persist(out).map_err(|e| anyhow::anyhow!("{}: cannot move the output into place: {}", shown(out), e.error))?;
    Ok(())
}

/// The output extensions the tool writes, as `--help` and errors list them.
pub const OUTPUT_EXTS: &[&str] = &["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"];

/// The format an output path's extension asks for; anything else is an error
/// listing the extensions that work.
pub fn output_format(out: &Path) -> Result<ImageFormat> {
    let ext = out.extension().map(|e| e.to_string_lossy().to_lowercase());
    match ext.as_deref() {
        Some(e) if OUTPUT_EXTS.contains(&e) => Ok(ImageFormat::from_extension(e).expect("a listed extension")),
        Some(e) => bail!("{}: unknown output extension .{e} (use one of .{})", shown(out), OUTPUT_EXTS.join(", .")),
        None => bail!("{}: no output extension (use one of .{})", shown(out), OUTPUT_EXTS.join(", .")),
    }
}

/// An output's channel layout: the input's, as far as the format can store it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub gray: bool,
    pub alpha: bool,
    /// 16 bits per channel.
    pub wide: bool,
}

impl Layout {
    /// The layout an input of colour type `c` asks for.
    pub fn of(c: ColorType) -> Self {
        Self { gray: !c.has_color(), alpha: c.has_alpha(), wide: c.bytes_per_pixel() / c.channel_count() >= 2 }
    }

    fn color_type(self) -> ColorType {
        match (self.gray, self.alpha, self.wide) {
            (true, false, false) => ColorType::L8,
            (true, true, false) => ColorType::La8,
            (false, false, false) => ColorType::Rgb8,
            (false, true, false) => ColorType::Rgba8,
            (true, false, true) => ColorType::L16,
            (true, true, true) => ColorType::La16,
            (false, false, true) => ColorType::Rgb16,
            (false, true, true) => ColorType::Rgba16,
        }
    }

    /// The closest layout `format` can encode: JPEG drops alpha, only PNG
    /// and TIFF keep 16 bits, and a gray+alpha image goes to a format without
    /// that type (TIFF) as RGBA. Checked by encoding one pixel, so the answer
    /// is the encoder's, found before any upscaling rather than after it.
    pub fn storable_in(self, format: ImageFormat, out: &Path) -> Result<Layout> {
        let base = Layout {
            alpha: self.alpha && format != ImageFormat::Jpeg,
            wide: self.wide && matches!(format, ImageFormat::Png | ImageFormat::Tiff),
            ..self
        };
        let candidates = [base, Layout { gray: false, ..base }, Layout { gray: false, wide: false, ..base }];
        candidates
            .into_iter()
            .find(|l| encodes(l.color_type(), format))
            .with_context(|| format!("{}: {format:?} cannot store a {:?} image", shown(out), base.color_type()))
    }
}

fn encodes(color: ColorType, format: ImageFormat) -> bool {
    let img = match color {
        ColorType::L8 => DynamicImage::ImageLuma8(ImageBuffer::new(1, 1)),
        ColorType::La8 => DynamicImage::ImageLumaA8(ImageBuffer::new(1, 1)),
        ColorType::Rgb8 => DynamicImage::ImageRgb8(ImageBuffer::new(1, 1)),
        ColorType::Rgba8 => DynamicImage::ImageRgba8(ImageBuffer::new(1, 1)),
        ColorType::L16 => DynamicImage::ImageLuma16(ImageBuffer::new(1, 1)),
        ColorType::La16 => DynamicImage::ImageLumaA16(ImageBuffer::new(1, 1)),
        ColorType::Rgb16 => DynamicImage::ImageRgb16(ImageBuffer::new(1, 1)),
        _ => DynamicImage::ImageRgba16(ImageBuffer::new(1, 1)),
    };
    img.write_to(&mut std::io::Cursor::new(Vec::new()), format).is_ok()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn to_dynamic(rgb: &Tensor, alpha: Option<&Tensor>, layout: Layout) -> DynamicImage {
    let (h, w) = (rgb.size()[2], rgb.size()[3]);
    let wide = layout.wide;
    // Gray inputs come back gray through BT.601 luma, as image-rs converts.
    let planes = if layout.gray {
        rgb.narrow(1, 0, 1) * 0.299 + rgb.narrow(1, 1, 1) * 0.587 + rgb.narrow(1, 2, 1) * 0.114
    } else {
        rgb.shallow_clone()
    };
    let planes = match alpha {
        Some(a) if layout.alpha => Tensor::cat(&[planes, a.shallow_clone()], 1),
        _ => planes,
    };
    let c = planes.size()[1];
    let (w, h) = (w as u32, h as u32);
    if wide {
        let v: Vec<u16> = to_samples(&planes, 65535.0, Kind::Int)
            .into_iter()
            .map(|x: i32| x as u16)
            .collect();
        match c {
            1 => DynamicImage::ImageLuma16(ImageBuffer::<Luma<u16>, _>::from_raw(w, h, v).unwrap()),
            2 => DynamicImage::ImageLumaA16(ImageBuffer::<LumaA<u16>, _>::from_raw(w, h, v).unwrap()),
            3 => DynamicImage::ImageRgb16(ImageBuffer::<Rgb<u16>, _>::from_raw(w, h, v).unwrap()),
            _ => DynamicImage::ImageRgba16(ImageBuffer::<Rgba<u16>, _>::from_raw(w, h, v).unwrap()),
        }
    } else {
        let v: Vec<u8> = to_samples(&planes, 255.0, Kind::Uint8);
        match c {
            1 => DynamicImage::ImageLuma8(ImageBuffer::<Luma<u8>, _>::from_raw(w, h, v).unwrap()),
            2 => DynamicImage::ImageLumaA8(ImageBuffer::<LumaA<u8>, _>::from_raw(w, h, v).unwrap()),
            3 => DynamicImage::ImageRgb8(ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, v).unwrap()),
            _ => DynamicImage::ImageRgba8(ImageBuffer::<Rgba<u8>, _>::from_raw(w, h, v).unwrap()),
        }
    }
}

/// Rows converted at a time: the float temporaries of the conversion (four
/// per pixel) then cost a band, not a second and third whole image.
const CONVERT_ROWS: i64 = 64;

/// (1, C, H, W) in [0, 1] to interleaved samples in `0..=max`, row band by
/// row band.
fn to_samples<T>(planes: &Tensor, max: f64, kind: Kind) -> Vec<T>
where
    Vec<T>: TryFrom<Tensor, Error = tch::TchError>,
{
    let (c, h, w) = (planes.size()[1], planes.size()[2], planes.size()[3]);
    let mut out = Vec::with_capacity((c * h * w) as usize);
    for y in (0..h).step_by(CONVERT_ROWS as usize) {
        let band = planes.narrow(2, y, CONVERT_ROWS.min(h - y));
        let hwc = band.squeeze_dim(0).permute([1, 2, 0]).clamp(0.0, 1.0);
        let samples = (hwc * max).round().to_kind(kind).flatten(0, -1);
        out.extend(Vec::<T>::try_from(samples).expect("a CPU tensor of this kind"));
    }
    out
}

/// An (1,3,H,W) [0,1] tensor as an 8-bit RGB image, for figures and metrics.
pub fn tensor_to_rgb8(rgb: &Tensor) -> image::RgbImage {
    let (h, w) = (rgb.size()[2] as u32, rgb.size()[3] as u32);
    let hwc = rgb.squeeze_dim(0).permute([1, 2, 0]).clamp(0.0, 1.0).contiguous();
    let v: Vec<u8> = Vec::try_from((hwc * 255.0).round().to_kind(Kind::Uint8).flatten(0, -1)).unwrap();
    image::RgbImage::from_raw(w, h, v).unwrap()
}

/// An 8-bit RGB image as a (1,3,H,W) [0,1] tensor.
pub fn rgb8_to_tensor(img: &image::RgbImage) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    Tensor::from_slice(img.as_raw()).view([h, w, 3]).permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float) / 255.0
}
