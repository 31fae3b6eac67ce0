//! The loss-curve plot (PNG), drawn by the tool itself.
//!
//! Drawn pixel by pixel with the `image` crate and 8x8 bitmap glyphs, so it
//! needs no system font and no plotting library: CI machines and headless
//! training boxes often have neither fonts nor a display. The drawing
//! primitives are public so `eval` draws its figures with the same glyphs.

use super::log::{read_log, LogRow};
use anyhow::{bail, Context, Result};
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::Path;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 540;
/// Plot area: left, top, right, bottom edges.
const AREA: (i64, i64, i64, i64) = (80, 40, 940, 490);
pub const PALETTE: [[u8; 3]; 6] = [[31, 119, 180], [214, 39, 40], [44, 160, 44], [255, 127, 14], [148, 103, 189], [140, 86, 75]];
pub const INK: Rgb<u8> = Rgb([0, 0, 0]);
pub const GRID: Rgb<u8> = Rgb([225, 225, 225]);

/// Reads a run's CSV log and draws every (split, name) series against the
/// step, log-scaled in y (non-positive values are left out).
pub fn plot_losses(csv: &Path, png: &Path) -> Result<()> {
    let rows = read_log(csv)?;
    let image = draw(&rows).with_context(|| format!("plotting {}", csv.display()))?;
    image.save(png).with_context(|| format!("writing {}", png.display()))
}

fn draw(rows: &[LogRow]) -> Result<RgbImage> {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.value > 0.0 && r.value.is_finite()) {
        series.entry(format!("{}/{}", r.split, r.name)).or_default().push((r.step as f64, r.value.log10()));
    }
    if series.is_empty() {
        bail!("no positive values to plot");
    }
    let points = series.values().flatten();
    let (x0, x1) = points.clone().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (y0, y1) = points.fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (x1, y0, y1) = (x1.max(x0 + 1.0), y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let (left, top, right, bottom) = AREA;
    let px = |x: f64| left + ((x - x0) / (x1 - x0) * (right - left) as f64).round() as i64;
    let py = |y: f64| bottom - ((y - y0) / (y1 - y0) * (bottom - top) as f64).round() as i64;

    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    for decade in y0 as i64..=y1 as i64 {
        let y = py(decade as f64);
        line(&mut img, (left, y), (right, y), GRID);
        text(&mut img, left - 8 - 8 * format!("1e{decade}").len() as i64, y - 4, &format!("1e{decade}"), INK);
    }
    for i in 0..=5 {
        let step = x0 + (x1 - x0) * i as f64 / 5.0;
        let (x, label) = (px(step), format!("{}", step.round()));
        line(&mut img, (x, bottom), (x, bottom + 5), INK);
        text(&mut img, x - 4 * label.len() as i64, bottom + 10, &label, INK);
    }
    line(&mut img, (left, top), (left, bottom), INK);
    line(&mut img, (left, bottom), (right, bottom), INK);
    text(&mut img, left, 16, "loss (log scale)", INK);
    text(&mut img, (left + right) / 2 - 16, bottom + 30, "step", INK);

    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = Rgb(PALETTE[i % PALETTE.len()]);
        for pair in pts.windows(2) {
            let (a, b) = ((px(pair[0].0), py(pair[0].1)), (px(pair[1].0), py(pair[1].1)));
            line(&mut img, a, b, colour);
            line(&mut img, (a.0, a.1 + 1), (b.0, b.1 + 1), colour);
        }
        for &(x, y) in pts.iter().filter(|_| pts.len() < 64) {
            fill(&mut img, px(x) - 2, py(y) - 2, 5, 5, colour);
        }
        let ly = top + 10 + 14 * i as i64;
        fill(&mut img, right - 180, ly, 10, 8, colour);
        text(&mut img, right - 164, ly, name, INK);
    }
    Ok(img)
}

pub fn put(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && x < img.width() as i64 && y < img.height() as i64 {
        img.put_pixel(x as u32, y as u32, colour);
    }
}

pub fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, colour: Rgb<u8>) {
    for dy in 0..h {
        for dx in 0..w {
            put(img, x + dx, y + dy, colour);
        }
    }
}

/// Bresenham's line.
pub fn line(img: &mut RgbImage, (mut x, mut y): (i64, i64), (x1, y1): (i64, i64), colour: Rgb<u8>) {
    let (dx, dy) = ((x1 - x).abs(), -(y1 - y).abs());
    let (sx, sy) = ((x1 - x).signum(), (y1 - y).signum());
    let mut err = dx + dy;
    loop {
        put(img, x, y, colour);
        if x == x1 && y == y1 {
            return;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// 8x8 glyphs; in each row byte, bit 0 is the leftmost pixel.
pub fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, colour: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        let glyph = font8x8::BASIC_FONTS.get(c).unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    put(img, x + 8 * i as i64 + col, y + row as i64, colour);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::log::{tests::row, CsvLog};

    #[test]
    fn writes_a_png_with_one_curve_per_series() {
        let dir = tempfile::tempdir().unwrap();
        let (csv, png) = (dir.path().join("log.csv"), dir.path().join("loss.png"));
        let mut log = CsvLog::open(&csv, 0).unwrap();
        let mut rows: Vec<LogRow> = (1..=200).map(|s| row(s, "train", 2.0 / (s as f64).sqrt())).collect();
        rows.extend((1..=10).map(|k| row(20 * k, "val", 3.0 / k as f64)));
        log.append(&rows).unwrap();
        plot_losses(&csv, &png).unwrap();

        let image = image::open(&png).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        assert!(std::fs::metadata(&png).unwrap().len() > 4000, "a real picture, not a blank one");
        let count = |c: [u8; 3]| image.pixels().filter(|p| p.0 == c).count();
        assert!(count(PALETTE[0]) > 500 && count(PALETTE[1]) > 300, "both curves drawn");
        let inked = image.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(inked > 2000, "axes and labels drawn ({inked} black pixels)");
    }

    #[test]
    fn a_log_without_positive_values_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("log.csv");
        CsvLog::open(&csv, 0).unwrap().append(&[row(1, "train", 0.0)]).unwrap();
        assert!(plot_losses(&csv, &dir.path().join("x.png")).is_err());
    }
}
