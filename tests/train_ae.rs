//! End-to-end test of the real `patchscaler train ae` binary on the tiny
//! preset and the project's data (run `scripts/fetch_data.sh` first).

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_patchscaler")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{args:?} failed:\n{text}");
    text
}

/// Validation PSNR rows of a run's log, in step order.
fn val_psnr(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains(",val,psnr_rgb,"))
        .map(|l| l.split(',').nth(3).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn trains_the_tiny_autoencoder_and_upscale_loads_it() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/manifest.csv");
    assert!(manifest.is_file(), "{} is missing: run scripts/fetch_data.sh first", manifest.display());
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    let out = d.path().join("run");
    run(&["init", "--preset", "tiny", "-o", model.to_str().unwrap()]);
    let before = std::fs::read(model.join("ae.safetensors")).unwrap();
    let text = run(&[
        "train", "ae", "--model", model.to_str().unwrap(), "--data", manifest.to_str().unwrap(),
        "--out", out.to_str().unwrap(), "--steps", "30", "--batch", "4", "--crop", "64", "--lr", "2e-3",
        "--val-every", "10", "--val-batches", "1", "--quiet",
    ]);
    assert!(text.contains("scaling_factor"), "{text}");
    let psnr = val_psnr(&out.join("log.csv"));
    assert_eq!(psnr.len(), 3, "{psnr:?}");
    assert!(psnr[2] > psnr[0], "validation PSNR did not rise: {psnr:?}");
    assert!(out.join("loss.png").exists());
    assert_ne!(before, std::fs::read(model.join("ae.safetensors")).unwrap(), "ae.safetensors was not rewritten");
    let img = d.path().join("in.png");
    image::RgbImage::from_pixel(16, 12, image::Rgb([90, 140, 200])).save(&img).unwrap();
    let up = d.path().join("up.png");
    run(&["upscale", img.to_str().unwrap(), "-o", up.to_str().unwrap(), "--model", model.to_str().unwrap()]);
    assert_eq!(image::image_dimensions(&up).unwrap(), (64, 48));
}

/// Named tensors of a safetensors file, sorted by name.
fn tensors(path: &Path) -> Vec<(String, tch::Tensor)> {
    let mut t = tch::Tensor::read_safetensors(path).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

#[test]
fn decoder_only_keeps_the_encoder_and_the_latent_scale() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/manifest.csv");
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    run(&["init", "--preset", "tiny", "-o", model.to_str().unwrap()]);
    let config = std::fs::read_to_string(model.join("model.toml")).unwrap();
    let before = tensors(&model.join("ae.safetensors"));
    let out = d.path().join("run");
    let text = run(&[
        "train", "ae", "--decoder-only", "--model", model.to_str().unwrap(), "--data", manifest.to_str().unwrap(),
        "--out", out.to_str().unwrap(), "--steps", "30", "--batch", "4", "--crop", "64", "--lr", "2e-3",
        "--val-every", "10", "--val-batches", "1", "--quiet",
    ]);
    assert!(text.contains("encoder and scaling_factor unchanged"), "{text}");
    let psnr = val_psnr(&out.join("log.csv"));
    assert!(psnr[2] > psnr[0], "validation PSNR did not rise: {psnr:?}");
    assert_eq!(std::fs::read_to_string(model.join("model.toml")).unwrap(), config, "model.toml must not change");
    let after = tensors(&model.join("ae.safetensors"));
    assert_eq!(before.len(), after.len());
    let mut decoder_changed = false;
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        let same = a.equal(b);
        if name.starts_with("encoder.") || name.starts_with("quant_conv.") {
            assert!(same, "{name} changed");
        } else {
            decoder_changed |= !same;
        }
    }
    assert!(decoder_changed, "no decoder weight changed");
}

/// On the exact latent `train ae` measures the shift and scale once, and
/// a model measured before keeps them; `upscale` then runs on the model.
#[test]
fn the_exact_latent_is_measured_once_and_upscale_runs_on_it() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/manifest.csv");
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    run(&["init", "--preset", "tiny-s2d", "-o", model.to_str().unwrap()]);
    let train = || {
        run(&[
            "train", "ae", "--model", model.to_str().unwrap(), "--data", manifest.to_str().unwrap(),
            "--out", d.path().join("run").to_str().unwrap(), "--steps", "2", "--batch", "2", "--crop", "32",
        ])
    };
    assert!(train().contains("measured on 4 crops"));
    let measured = tensors(&model.join("ae.safetensors"));
    let names: Vec<&str> = measured.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["scale", "shift"]);
    let shift = &measured[1].1;
    assert!(shift.abs().min().double_value(&[]) > 0.0, "every channel has its mean: {shift}");
    assert!(train().contains("already measured"));
    let again = tensors(&model.join("ae.safetensors"));
    assert!(again.iter().zip(&measured).all(|(a, b)| a.1.equal(&b.1)));
    let img = d.path().join("in.png");
    image::RgbImage::from_fn(20, 12, |x, y| image::Rgb([(9 * x) as u8, (13 * y) as u8, 120])).save(&img).unwrap();
    let up = d.path().join("up.png");
    run(&["upscale", img.to_str().unwrap(), "-o", up.to_str().unwrap(), "--model", model.to_str().unwrap()]);
    assert_eq!(image::image_dimensions(&up).unwrap(), (80, 48));
}
