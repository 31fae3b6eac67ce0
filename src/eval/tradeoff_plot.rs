//! Fig. 6 drawn by the tool: PSNR (left) and NIQE (right) against runtime,
//! one series per family, every point captioned with its setting.

use super::tradeoff::Point;
use crate::train::plot::{fill, line, text, GRID, INK, PALETTE};
use anyhow::{bail, Context, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 520;
const PANEL_W: i64 = 600;
/// Inside a panel: left, top, right, bottom edges of the axes.
const AXES: (i64, i64, i64, i64) = (70, 40, 570, 450);

pub fn plot_tradeoff(points: &[Point], png: &Path) -> Result<()> {
    let img = draw(points)?;
    img.save(png).with_context(|| format!("writing {}", png.display()))
}

pub fn draw(points: &[Point]) -> Result<RgbImage> {
    if points.is_empty() {
        bail!("no settings to plot");
    }
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    let psnr: Vec<(f64, f64)> = points.iter().map(|p| (p.seconds, p.psnr)).collect();
    panel(&mut img, 0, "PSNR-Y (dB), higher is better", points, &psnr);
    let niqe: Vec<(f64, f64)> = points.iter().map(|p| (p.seconds, p.niqe.unwrap_or(f64::NAN))).collect();
    panel(&mut img, PANEL_W, "NIQE, lower is better", points, &niqe);
    Ok(img)
}

fn panel(img: &mut RgbImage, dx: i64, title: &str, points: &[Point], xy: &[(f64, f64)]) {
    let (left, top, right, bottom) = (AXES.0 + dx, AXES.1, AXES.2 + dx, AXES.3);
    text(img, left, 14, title, INK);
    text(img, (left + right) / 2 - 48, bottom + 34, "runtime (s)", INK);
    line(img, (left, top), (left, bottom), INK);
    line(img, (left, bottom), (right, bottom), INK);
    let finite: Vec<(f64, f64)> = xy.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    if finite.is_empty() {
        text(img, left + 20, (top + bottom) / 2, "not defined for these image sizes", INK);
        return;
    }
    let range = |v: Vec<f64>| {
        let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let pad = ((hi - lo) * 0.08).max(1e-6 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    };
    let (x0, x1) = range(finite.iter().map(|p| p.0).collect());
    let (y0, y1) = range(finite.iter().map(|p| p.1).collect());
    let px = |x: f64| left + ((x - x0) / (x1 - x0) * (right - left) as f64).round() as i64;
    let py = |y: f64| bottom - ((y - y0) / (y1 - y0) * (bottom - top) as f64).round() as i64;
    for i in 0..=4 {
        let (xv, yv) = (x0 + (x1 - x0) * i as f64 / 4.0, y0 + (y1 - y0) * i as f64 / 4.0);
        let (x, y) = (px(xv), py(yv));
        line(img, (left + 1, y), (right, y), GRID);
        line(img, (x, bottom), (x, bottom + 5), INK);
        let (xl, yl) = (format!("{xv:.2}"), format!("{yv:.2}"));
        text(img, x - 4 * xl.len() as i64, bottom + 10, &xl, INK);
        text(img, left - 6 - 8 * yl.len() as i64, y - 4, &yl, INK);
    }
    let mut families: Vec<&str> = Vec::new();
    for p in points {
        if !families.contains(&p.family.as_str()) {
            families.push(&p.family);
        }
    }
    for (k, fam) in families.iter().enumerate() {
        let colour = Rgb(PALETTE[k % PALETTE.len()]);
        let mut series: Vec<(f64, f64, &str)> = points
            .iter()
            .zip(xy)
            .filter(|(p, xy)| p.family == *fam && xy.0.is_finite() && xy.1.is_finite())
            .map(|(p, xy)| (xy.0, xy.1, p.label.as_str()))
            .collect();
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in series.windows(2) {
            line(img, (px(w[0].0), py(w[0].1)), (px(w[1].0), py(w[1].1)), colour);
        }
        for &(x, y, label) in &series {
            fill(img, px(x) - 3, py(y) - 3, 7, 7, colour);
            text(img, px(x) + 6, py(y) - 12, label, colour);
        }
        fill(img, right - 100, top + 6 + 14 * k as i64, 10, 8, colour);
        text(img, right - 84, top + 6 + 14 * k as i64, fam, INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(label: &str, family: &str, s: f64, psnr: f64, niqe: Option<f64>) -> Point {
        Point { label: label.into(), family: family.into(), seconds: s, psnr, niqe }
    }

    #[test]
    fn draws_both_families_in_both_panels() {
        let pts = vec![
            point("U1000/20", "uniform", 4.0, 25.0, Some(5.0)),
            point("U400/8", "uniform", 1.0, 24.0, Some(6.0)),
            point("PGS balanced", "pgs", 1.5, 25.2, Some(5.1)),
        ];
        let img = draw(&pts).unwrap();
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        let count = |c: [u8; 3], x0: u32, x1: u32| img.enumerate_pixels().filter(|(x, _, p)| *x >= x0 && *x < x1 && p.0 == c).count();
        for (x0, x1) in [(0, 600), (600, 1200)] {
            assert!(count(PALETTE[0], x0, x1) > 100, "uniform series in panel at {x0}");
            assert!(count(PALETTE[1], x0, x1) > 49, "PGS points in panel at {x0}");
        }
        assert!(draw(&[]).is_err());
    }

    #[test]
    fn missing_niqe_leaves_a_note_instead_of_points() {
        let img = draw(&[point("U1000/20", "uniform", 1.0, 20.0, None)]).unwrap();
        let right_colour = img.enumerate_pixels().filter(|(x, _, p)| *x >= 600 && p.0 == PALETTE[0]).count();
        assert_eq!(right_colour, 0);
    }
}
