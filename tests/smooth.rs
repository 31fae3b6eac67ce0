//! Smooth in, smooth out (issue 9): with the shipped model, the real binary
//! upscales a flat image, a linear and a radial colour gradient (made here,
//! LR and true HR sampled from the same continuous function) x4 and must
//! return them within 6 levels of the true image everywhere, edges
//! included, and at 45 dB or better. Without the detail gate the same model
//! put blotches, a grid and an edge band into them (35.9 / 39.9 dB).

use std::path::Path;
use std::process::Command;

/// The test image of `kind`, `n` x `n`, 8-bit RGB: pixel centres at (i + 0.5) / n.
fn make(kind: &str, n: u32) -> image::RgbImage {
    image::RgbImage::from_fn(n, n, |x, y| {
        let (u, v) = ((x as f64 + 0.5) / n as f64, (y as f64 + 0.5) / n as f64);
        let rgb = match kind {
            "flat" => [90.0, 140.0, 200.0],
            "linear" => [20.0 + 200.0 * u, 50.0 + 150.0 * v, 120.0],
            _ => {
                let r = ((u - 0.5).powi(2) + (v - 0.5).powi(2)).sqrt() / 0.7071;
                [40.0 + 180.0 * r, 200.0 - 120.0 * r, 90.0 + 100.0 * r]
            }
        };
        image::Rgb(rgb.map(|c: f64| c.round().clamp(0.0, 255.0) as u8))
    })
}

/// Largest error in levels and PSNR (dB) of `got` against `want`.
fn errors(got: &image::RgbImage, want: &image::RgbImage) -> (i32, f64) {
    let (mut worst, mut sq) = (0i32, 0f64);
    for (a, b) in got.as_raw().iter().zip(want.as_raw()) {
        let e = (*a as i32 - *b as i32).abs();
        worst = worst.max(e);
        sq += (e * e) as f64;
    }
    let mse = sq / got.as_raw().len() as f64;
    let psnr = if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() };
    (worst, psnr)
}

/// Upscales `lr` to `out` with the shipped model; returns the summary line.
fn upscale(lr: &Path, out: &Path, extra: &[&str]) -> String {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let o = Command::new(env!("CARGO_BIN_EXE_patchscaler")).arg("upscale").arg("--model").arg(&model).arg(lr).arg("-o").arg(out).args(extra).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The README's "Smooth inputs" table: `cargo test --release --test smooth
/// -- --nocapture` prints both columns (only the gated one is asserted).
#[test]
fn flat_and_gradient_images_come_back_smooth() {
    let d = tempfile::tempdir().unwrap();
    for kind in ["flat", "linear", "radial"] {
        let lr = d.path().join(format!("{kind}.png"));
        make(kind, 128).save(&lr).unwrap();
        let want = make(kind, 512);
        let out = d.path().join(format!("{kind}_x4.png"));
        let line = upscale(&lr, &out, &[]);
        let got = image::open(&out).unwrap().into_rgb8();
        assert_eq!(got.dimensions(), want.dimensions());
        let (worst, psnr) = errors(&got, &want);
        let raw = d.path().join(format!("{kind}_nogate_x4.png"));
        let raw_line = upscale(&lr, &raw, &["--no-detail-gate"]);
        let (raw_worst, raw_psnr) = errors(&image::open(&raw).unwrap().into_rgb8(), &want);
        eprintln!("{kind}: {worst} levels / {psnr:.1} dB; --no-detail-gate: {raw_worst} levels / {raw_psnr:.1} dB");
        eprintln!("  {line}\n  {raw_line}");
        assert!(worst <= 6, "{kind}: largest error {worst} levels");
        assert!(psnr >= 45.0, "{kind}: {psnr:.2} dB");
    }
}

/// A sky: a vertical gradient with faint clouds (a few smooth waves of
/// 6-10 levels), the kind of picture where the learned autoencoder's model
/// left a band along the right edge (README: column means -2.6 levels 8-16
/// px in, +4.2 in the last 4 px). Made at the LR and HR sizes from the same
/// continuous function, like `make`.
fn sky(n: u32) -> image::RgbImage {
    image::RgbImage::from_fn(n, n, |x, y| {
        let (u, v) = ((x as f64 + 0.5) / n as f64, (y as f64 + 0.5) / n as f64);
        let tau = std::f64::consts::TAU;
        let cloud = 6.0 * (tau * (1.3 * u + 0.4 * v)).sin() + 4.0 * (tau * (2.1 * v - 0.7 * u) + 1.0).sin() * (tau * 1.7 * u).cos();
        let rgb = [70.0 + 60.0 * v + cloud, 110.0 + 50.0 * v + cloud, 190.0 + 30.0 * v + 0.6 * cloud];
        image::Rgb(rgb.map(|c: f64| c.round().clamp(0.0, 255.0) as u8))
    })
}

/// Mean of each of the `band` outermost columns (or rows) on each side,
/// per colour, minus the same means of `want`: the largest absolute gap.
fn edge_mean_gap(got: &image::RgbImage, want: &image::RgbImage, band: u32) -> f64 {
    let (w, h) = got.dimensions();
    let mean = |img: &image::RgbImage, col: bool, i: u32, c: usize| -> f64 {
        let n = if col { h } else { w };
        (0..n).map(|j| img.get_pixel(if col { i } else { j }, if col { j } else { i })[c] as f64).sum::<f64>() / n as f64
    };
    let mut worst = 0f64;
    for col in [true, false] {
        let len = if col { w } else { h };
        for i in (0..band).chain(len - band..len) {
            for c in 0..3 {
                worst = worst.max((mean(got, col, i, c) - mean(want, col, i, c)).abs());
            }
        }
    }
    worst
}

/// No edge band (issue 19): with the default settings every edge's column
/// and row means stay within 1.5 levels of the HR's. Without the detail
/// gate the figure is printed, not asserted (the shipped model: 1.53).
#[test]
fn a_sky_has_no_edge_band() {
    let d = tempfile::tempdir().unwrap();
    let lr = d.path().join("sky.png");
    sky(128).save(&lr).unwrap();
    let want = sky(512);
    for extra in [&[][..], &["--no-detail-gate"][..]] {
        let out = d.path().join("sky_x4.png");
        upscale(&lr, &out, extra);
        let gap = edge_mean_gap(&image::open(&out).unwrap().into_rgb8(), &want, 16);
        eprintln!("sky {extra:?}: largest edge column/row mean gap {gap:.2} levels");
        if extra.is_empty() {
            assert!(gap <= 1.5, "an edge's mean is {gap:.2} levels off the HR's");
        }
    }
}
