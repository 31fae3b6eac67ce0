//! Animated inputs. `image` decodes an animated GIF, PNG (APNG) or WebP as
//! its first frame and says nothing, so an animation would come back as one
//! still picture of its first moment. Such a file is refused instead, with
//! its frame count: which frame a user wants is theirs to say, by saving
//! it as a still image.

use image::ImageFormat;
use std::io::{BufRead, Read, Seek};

/// How many frames the image read from `r` (already known to be `format`)
/// holds: more than one for an animation, 1 for a still image or data these
/// headers cannot tell (the full decode then reports what is wrong with
/// it). Only headers and frame markers are read; no frame is decoded. The
/// caller rewinds `r`.
pub fn frame_count<R: BufRead + Seek>(r: &mut R, format: ImageFormat) -> u32 {
    let n = match format {
        ImageFormat::Gif => gif_frames(r),
        ImageFormat::Png => png::Decoder::new(r)
            .read_info()
            .ok()
            .and_then(|d| d.info().animation_control().map(|a| a.num_frames)),
        ImageFormat::WebP => image_webp::WebPDecoder::new(r).ok().filter(|d| d.is_animated()).map(|d| d.num_frames()),
        _ => None,
    };
    n.unwrap_or(1).max(1)
}

/// Frames counted up to the end or the first damaged one.
fn gif_frames(r: impl Read) -> Option<u32> {
    let mut opts = gif::DecodeOptions::new();
    opts.skip_frame_decoding(true);
    let mut d = opts.read_info(r).ok()?;
    let mut n = 0;
    while let Ok(Some(_)) = d.next_frame_info() {
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};

    /// An `n`-frame GIF (tests/common/animated.rs makes APNG and WebP ones
    /// for the end-to-end tests).
    fn gif(n: u8) -> Vec<u8> {
        let mut v = Vec::new();
        let frames = (0..n).map(|i| {
            let f = RgbaImage::from_fn(8, 6, |x, y| image::Rgba([x as u8 * 30, y as u8 * 40, i * 60, 255]));
            Frame::from_parts(f, 0, 0, Delay::from_numer_denom_ms(100, 1))
        });
        GifEncoder::new(&mut v).encode_frames(frames).unwrap();
        v
    }

    #[test]
    fn frames_are_counted_without_decoding_and_junk_counts_as_one() {
        let count = |bytes: Vec<u8>| frame_count(&mut std::io::Cursor::new(bytes), ImageFormat::Gif);
        assert_eq!(count(gif(3)), 3);
        assert_eq!(count(gif(1)), 1);
        assert_eq!(count(b"GIF89a".to_vec()), 1);
        assert_eq!(count(Vec::new()), 1);
    }
}
