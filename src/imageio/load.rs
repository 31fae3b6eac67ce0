//! Decoding an input image into the float RGB tensor the model sees.
//!
//! Alpha and the original bit depth / colour type travel beside the RGB
//! tensor, because the model only restores colour: alpha is upscaled
//! separately and the output is written back in the input's layout.

use anyhow::{bail, Result};
use image::{ColorType, DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use super::shown;
use std::io::{BufRead, Cursor, Seek};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Where an image comes from: a file, or bytes already in memory (an
/// upload) with the name its messages use. Both get the same checks and
/// limits.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    File(&'a Path),
    Bytes { bytes: &'a [u8], name: &'a Path },
}

impl Source<'_> {
    /// The name messages use.
    pub fn name(&self) -> &Path {
        match self {
            Source::File(p) => p,
            Source::Bytes { name, .. } => name,
        }
    }
}

/// Why an image was refused, for a caller that answers each reason
/// differently (the web page's HTTP status); the message names the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Empty,
    NotAnImage,
    Animated,
    ZeroSize,
    /// More pixels or memory than the caller's limit.
    TooLarge,
    Corrupt,
}

#[derive(Debug)]
pub struct Refused {
    pub why: Refusal,
    message: String,
}

impl Refused {
    pub fn new(why: Refusal, message: String) -> anyhow::Error {
        anyhow::Error::new(Refused { why, message })
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refused {}

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

/// What an image file's header says, read without decoding a pixel: enough
/// to refuse it (size, colour type) before any work starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub color: ColorType,
}

/// Opens the image and reads its header; the decoder may allocate at most
/// `max_alloc` bytes. Every error names the image.
fn open_decoder<'a>(src: Source<'a>, max_alloc: u64) -> Result<(Header, Box<dyn ImageDecoder + 'a>)> {
    let path = src.name();
    match src {
        Source::File(p) => {
            let meta = std::fs::metadata(p).map_err(|e| super::io_error(p, &e))?;
            if meta.is_dir() {
                bail!("{}: is a folder, not an image", shown(p));
            }
            if meta.len() == 0 {
                return Err(Refused::new(Refusal::Empty, format!("{}: the file is empty", shown(p))));
            }
            let file = std::fs::File::open(p).map_err(|e| super::io_error(p, &e))?;
            header(std::io::BufReader::new(file), path, max_alloc)
        }
        Source::Bytes { bytes, .. } => {
            if bytes.is_empty() {
                return Err(Refused::new(Refusal::Empty, format!("{}: the file is empty", shown(path))));
            }
            header(Cursor::new(bytes), path, max_alloc)
        }
    }
}

fn header<'a, R: BufRead + Seek + 'a>(r: R, path: &Path, max_alloc: u64) -> Result<(Header, Box<dyn ImageDecoder + 'a>)> {
    let mut reader = ImageReader::new(r).with_guessed_format().map_err(|e| super::io_error(path, &e))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits.clone());
    let Some(format) = reader.format() else {
        return Err(Refused::new(
            Refusal::NotAnImage,
            format!("{}: not an image in a supported format (PNG, JPEG, WebP, TIFF, BMP, GIF, ...)", shown(path)),
        ));
    };
    let mut reader = reader.into_inner();
    let start = reader.stream_position().map_err(|e| super::io_error(path, &e))?;
    let frames = super::animation::frame_count(&mut reader, format);
    reader.seek(std::io::SeekFrom::Start(start)).map_err(|e| super::io_error(path, &e))?;
    if frames > 1 {
        return Err(Refused::new(
            Refusal::Animated,
            format!("{}: animated ({frames} frames); only still images are upscaled (save the frame you want as a PNG)", shown(path)),
        ));
    }
    let mut reader = ImageReader::with_format(reader, format);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| decode_error(path, e))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Refused::new(Refusal::ZeroSize, format!("{}: the image has zero size ({width}x{height})", shown(path))));
    }
    let header = Header { format, width, height, color: decoder.color_type() };
    Ok((header, Box::new(decoder)))
}

/// The decoder's own complaint, as one line naming the file (some decoders'
/// messages span lines).
fn decode_error(path: &Path, e: image::ImageError) -> anyhow::Error {
    let (why, what) = match &e {
        image::ImageError::Limits(_) => {
            return Refused::new(
                Refusal::TooLarge,
                format!("{}: too large: decoding it needs more memory than the limit allows (--memory-limit)", shown(path)),
            )
        }
        image::ImageError::Unsupported(_) => (Refusal::NotAnImage, "unsupported"),
        _ => (Refusal::Corrupt, "truncated or corrupt"),
    };
    let detail = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    Refused::new(why, format!("{}: {what}: {detail}", shown(path)))
}

/// Decodes every pixel of `path` after `admit` accepted its header (e.g. the
/// memory limit: a decompression bomb must be refused before it is decoded),
/// and refuses a file whose data ends early even where the decoder would
/// quietly fill the missing part (JPEG: grey). The decoder itself may
/// allocate at most `max_alloc` bytes.
pub fn decode_checked(
    path: &Path,
    max_alloc: u64,
    admit: impl FnOnce(&Header) -> Result<()>,
) -> Result<(Header, DynamicImage)> {
    decode_source(Source::File(path), max_alloc, admit)
}

/// `decode_checked` for an image file or one in memory.
pub fn decode_source(
    src: Source,
    max_alloc: u64,
    admit: impl FnOnce(&Header) -> Result<()>,
) -> Result<(Header, DynamicImage)> {
    let path = src.name();
    let (header, decoder) = open_decoder(src, max_alloc)?;
    admit(&header)?;
    if header.format == ImageFormat::Jpeg {
        let complete = match src {
            Source::File(p) => super::integrity::jpeg_is_complete(&std::fs::read(p).map_err(|e| super::io_error(p, &e))?),
            Source::Bytes { bytes, .. } => super::integrity::jpeg_is_complete(bytes),
        };
        if !complete {
            return Err(Refused::new(
                Refusal::Corrupt,
                format!("{}: truncated or corrupt (the JPEG data ends before its end marker)", shown(path)),
            ));
        }
    }
    let mut decoder = decoder;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(path, e))?;
    img.apply_orientation(orientation);
    Ok((header, img))
}

/// `decode_checked`, as the tensors the pipeline takes.
pub fn load_checked(
    path: &Path,
    max_alloc: u64,
    admit: impl FnOnce(&Header) -> Result<()>,
) -> Result<LoadedImage> {
    let (_, img) = decode_checked(path, max_alloc, admit)?;
    Ok(to_loaded(img, path))
}

/// Decodes `path`, refusing images whose pixel count exceeds `max_pixels`
/// before any pixel is decoded (a decompression bomb must not exhaust memory).
pub fn load_image(path: &Path, max_pixels: u64) -> Result<LoadedImage> {
    let (_, img) = decode_at_most(Source::File(path), max_pixels, "input pixels at most")?;
    Ok(to_loaded(img, path))
}

/// `decode_source` bounded by a pixel count: more than `max_pixels` is
/// refused from the header ("<name>: WxH is too large (<max_pixels> <what>)")
/// and the decoder may allocate what that many pixels need.
pub fn decode_at_most(src: Source, max_pixels: u64, what: &str) -> Result<(Header, DynamicImage)> {
    // RGBA16 is the widest layout the decoders produce: 8 bytes a pixel.
    let max_alloc = max_pixels.saturating_mul(8).max(512 << 20);
    let name = src.name();
    decode_source(src, max_alloc, |h| {
        let (w, h) = (h.width, h.height);
        if (w as u64) * (h as u64) > max_pixels {
            return Err(Refused::new(Refusal::TooLarge, format!("{}: {w}x{h} is too large ({max_pixels} {what})", shown(name))));
        }
        Ok(())
    })
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
