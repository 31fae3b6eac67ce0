//! The side-by-side picture of one evaluated image: what each stage adds,
//! and where PGS spent its steps (the Q-map panels of paper Fig. 4).

use crate::imageio::save::tensor_to_rgb8;
use crate::pipeline::{qmap_image::qmap_figure, Upscaled};
use crate::train::plot::{text, INK};
use image::{Rgb, RgbImage};
use tch::{Device, Kind, Tensor};

/// Height of the caption strip above the panels (8 px glyphs + margin).
pub const LABEL_HEIGHT: u32 = 12;
/// Panel captions, left to right.
pub const PANELS: [&str; 7] = ["LR", "bicubic", "coarse", "PatchScaler", "HR", "confidence", "groups"];

/// (width, height) of the figure for an HR of `w` x `h`.
pub fn figure_size(w: u32, h: u32) -> (u32, u32) {
    (PANELS.len() as u32 * w, h + LABEL_HEIGHT)
}

/// LR (nearest-neighbour, so its pixels stay visible) | bicubic | GRM coarse
/// | PatchScaler | HR | confidence map | patch groups over the bicubic input.
/// Every image is (1,3,H,W) at the HR size except `lr`.
pub fn side_by_side(lr: &Tensor, bicubic: &Tensor, coarse: &Tensor, sr: &Tensor, hr: &Tensor, up: &Upscaled) -> RgbImage {
    let (h, w) = (hr.size()[2], hr.size()[3]);
    let cpu = |t: &Tensor| t.to_device(Device::Cpu).to_kind(Kind::Float);
    let lr_big = cpu(lr).upsample_nearest2d([h, w], None, None);
    let qmap = cpu(&qmap_figure(up, &cpu(lr), (h, w)).expect("the LR's bicubic at the HR size"));
    let row = Tensor::cat(&[lr_big, cpu(bicubic), cpu(coarse), cpu(sr), cpu(hr), qmap], 3);
    let panels = tensor_to_rgb8(&row);
    let (fw, fh) = figure_size(w as u32, h as u32);
    let mut fig = RgbImage::from_pixel(fw, fh, Rgb([255, 255, 255]));
    image::imageops::replace(&mut fig, &panels, 0, LABEL_HEIGHT as i64);
    let max_chars = (w as usize / 8).max(1);
    for (i, label) in PANELS.iter().enumerate() {
        let caption: String = label.chars().take(max_chars).collect();
        text(&mut fig, i as i64 * w + 1, 2, &caption, INK);
    }
    fig
}
