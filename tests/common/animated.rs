//! Animated images in the three formats `image` reads animations from, for
//! the tests that they are refused rather than cut to their first frame.

use image::codecs::gif::GifEncoder;
use image::{Delay, Frame, ImageEncoder, RgbaImage};

fn frame(i: u8) -> RgbaImage {
    RgbaImage::from_fn(8, 6, |x, y| image::Rgba([x as u8 * 30, y as u8 * 40, i * 60, 255]))
}

/// A GIF of `n` frames (1: a still GIF).
pub fn gif(n: u8) -> Vec<u8> {
    let mut v = Vec::new();
    let frames = (0..n).map(|i| Frame::from_parts(frame(i), 0, 0, Delay::from_numer_denom_ms(100, 1)));
    GifEncoder::new(&mut v).encode_frames(frames).unwrap();
    v
}

/// An APNG of `n` frames, its default image the first.
pub fn apng(n: u8) -> Vec<u8> {
    let mut v = Vec::new();
    let mut e = png::Encoder::new(&mut v, 8, 6);
    e.set_color(png::ColorType::Rgba);
    e.set_animated(n as u32, 0).unwrap();
    let mut w = e.write_header().unwrap();
    for i in 0..n {
        w.write_image_data(frame(i).as_raw()).unwrap();
    }
    w.finish().unwrap();
    v
}

/// An animated WebP of `n` lossless frames, put together by hand (`image`
/// encodes still WebP only); the layout is the WebP container
/// specification's "extended file format": VP8X, ANIM, one ANMF per frame.
pub fn webp(n: u8) -> Vec<u8> {
    let chunk = |tag: &[u8], data: &[u8]| {
        let mut c = tag.to_vec();
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let u24 = |x: u32| x.to_le_bytes()[..3].to_vec();
    let mut body = b"WEBP".to_vec();
    // Flags: animation; canvas width - 1 and height - 1.
    body.extend(chunk(b"VP8X", &[vec![0x02, 0, 0, 0], u24(7), u24(5)].concat()));
    body.extend(chunk(b"ANIM", &[0; 6]));
    for i in 0..n {
        let mut still = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut still)
            .write_image(frame(i).as_raw(), 8, 6, image::ExtendedColorType::Rgba8)
            .unwrap();
        // x, y, width - 1, height - 1, duration, flags; then the still's VP8L
        // chunk (a still WebP is "RIFF", size, "WEBP", then that chunk).
        let mut anmf = [u24(0), u24(0), u24(7), u24(5), u24(100), vec![0]].concat();
        anmf.extend_from_slice(&still[12..]);
        body.extend(chunk(b"ANMF", &anmf));
    }
    let mut v = b"RIFF".to_vec();
    v.extend_from_slice(&(body.len() as u32).to_le_bytes());
    v.extend(body);
    v
}
