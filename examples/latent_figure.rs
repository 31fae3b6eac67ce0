//! The README's pictures of the latent comparison: from the `eval` figures
//! of two models on the same images, one row per image of
//! bicubic | coarse and PatchScaler of model A | the same of model B | HR.
//!
//!   cargo run --release --example latent_figure -- OUT.png A_NAME A_FIGURES B_NAME B_FIGURES STEM [STEM ...]
//!
//! A_FIGURES and B_FIGURES are `eval -o DIR` runs' `DIR/figures`, made with
//! the same images, crop, protocol and seed (so the bicubic and HR panels
//! are the same in both).

use anyhow::{ensure, Context, Result};
use image::{imageops, RgbImage};
use patchscaler::eval::figure::{LABEL_HEIGHT, PANELS};
use patchscaler::train::plot::{text, INK};

/// One panel of an eval figure, by its caption.
fn panel(fig: &RgbImage, name: &str) -> Result<RgbImage> {
    let i = PANELS.iter().position(|p| *p == name).context("no such panel")? as u32;
    let w = fig.width() / PANELS.len() as u32;
    Ok(imageops::crop_imm(fig, i * w, LABEL_HEIGHT, w, fig.height() - LABEL_HEIGHT).to_image())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    ensure!(args.len() >= 6, "usage: latent_figure OUT.png A_NAME A_FIGURES B_NAME B_FIGURES STEM [STEM ...]");
    let (out, a_name, a_dir, b_name, b_dir) = (&args[0], &args[1], &args[2], &args[3], &args[4]);
    let mut rows = Vec::new();
    for stem in &args[5..] {
        let open = |dir: &str| -> Result<RgbImage> {
            let p = format!("{dir}/{stem}.png");
            Ok(image::open(&p).with_context(|| p.clone())?.into_rgb8())
        };
        let (a, b) = (open(a_dir)?, open(b_dir)?);
        let cells = [
            ("bicubic".to_string(), panel(&a, "bicubic")?),
            (format!("{a_name} coarse"), panel(&a, "coarse")?),
            (format!("{a_name} PatchScaler"), panel(&a, "PatchScaler")?),
            (format!("{b_name} coarse"), panel(&b, "coarse")?),
            (format!("{b_name} PatchScaler"), panel(&b, "PatchScaler")?),
            (format!("HR ({stem})"), panel(&a, "HR")?),
        ];
        rows.push(cells);
    }
    let (w, h) = (rows[0][0].1.width(), rows[0][0].1.height());
    let mut fig = RgbImage::from_pixel(6 * w, rows.len() as u32 * (h + LABEL_HEIGHT), image::Rgb([255, 255, 255]));
    for (r, cells) in rows.iter().enumerate() {
        let y = r as u32 * (h + LABEL_HEIGHT);
        for (c, (label, img)) in cells.iter().enumerate() {
            imageops::replace(&mut fig, img, (c as u32 * w) as i64, (y + LABEL_HEIGHT) as i64);
            text(&mut fig, (c as u32 * w + 2) as i64, (y + 2) as i64, label, INK);
        }
    }
    // JPEG at quality 92 where asked: a tenth of the PNG, and the tracked
    // tree must stay within the GPU loan's upload.
    if out.ends_with(".jpg") {
        let file = std::fs::File::create(out).with_context(|| out.clone())?;
        image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 92).encode_image(&fig)?;
    } else {
        fig.save(out).with_context(|| out.clone())?;
    }
    println!("wrote {out}");
    Ok(())
}
