//! Checks for data that ends early where a decoder would not say so.
//!
//! zune-jpeg (behind `image`) fills the rows a truncated JPEG lacks with grey
//! and reports success, so a cut-off download would be upscaled as if it
//! were whole. PNG, WebP, TIFF and BMP decoders report a short read.

/// Whether a JPEG's last scan is followed by the end-of-image marker.
///
/// Entropy-coded data stuffs every 0xFF as FF 00, so FF D9 after the last
/// start-of-scan (FF DA) can only be the real marker; an EXIF thumbnail's own
/// EOI comes before the main image's scans and does not count.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(last_sos) = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[last_sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::jpeg_is_complete;

    fn jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 7]));
        let mut v = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Jpeg).unwrap();
        v
    }

    #[test]
    fn a_whole_jpeg_passes_and_a_cut_one_does_not() {
        let j = jpeg();
        assert!(jpeg_is_complete(&j));
        assert!(!jpeg_is_complete(&j[..j.len() * 6 / 10]));
        assert!(!jpeg_is_complete(&j[..j.len() - 2]));
        assert!(!jpeg_is_complete(b""));
    }
}
