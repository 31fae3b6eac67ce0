//! End-to-end tests of the real `patchscaler train grm` binary on the tiny
//! preset and the project's data (run `scripts/fetch_data.sh` first).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patchscaler"))
}

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{c:?} failed:\n{text}");
    text
}

fn manifest() -> PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/manifest.csv");
    assert!(m.is_file(), "{} is missing: run scripts/fetch_data.sh first", m.display());
    m
}

fn tiny_model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    run(bin().args(["init", "--preset", "tiny", "-o"]).arg(&m));
    m
}

/// Small and fast: 80 px crops (the smallest the degradation takes), two per
/// batch, 2.5x the default learning rate so that two dozen steps show
/// learning, and frequent validation so the first row is near the start.
fn train(model: &Path, out: &Path, steps: u64) -> String {
    train_with(model, out, steps, &[])
}

fn train_with(model: &Path, out: &Path, steps: u64, extra: &[&str]) -> String {
    let mut c = bin();
    c.args(["train", "grm", "--model"]).arg(model).arg("--data").arg(manifest()).arg("--out").arg(out);
    c.args(["--steps", &steps.to_string(), "--batch", "2", "--crop", "80", "--lr", "5e-4", "--val-every", "4", "--val-batches", "1"]);
    c.args(["--reuse", "2", "--quiet"]).args(extra);
    run(&mut c)
}

/// `name` of the `split` rows of log.csv, in step order.
fn log_values(out: &Path, split: &str, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(out.join("log.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == split && f[2] == name)
        .map(|f| f[3].parse().unwrap())
        .collect()
}

fn weights(path: &Path) -> Vec<(String, tch::Tensor)> {
    let mut w = tch::Tensor::read_safetensors(path).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn training_lowers_the_validation_loss_and_upscale_loads_the_result() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let before = weights(&model.join("grm.safetensors"));
    let out = d.path().join("run");
    train(&model, &out, 24);

    let loss = log_values(&out, "val", "loss");
    assert_eq!(loss.len(), 6, "validations every 4 steps");
    assert!(loss[2] < loss[0], "validation loss did not fall: {loss:?}");
    let bicubic = log_values(&out, "val", "psnr_bicubic");
    assert!(bicubic.iter().all(|&p| p > 15.0 && p == bicubic[0]), "bicubic reference must be fixed and sane: {bicubic:?}");
    let after = weights(&model.join("grm.safetensors"));
    assert!(before.iter().zip(&after).any(|(a, b)| !a.1.equal(&b.1)), "grm.safetensors was not updated");

    let lr = d.path().join("in.png");
    image::RgbImage::from_fn(20, 16, |x, y| image::Rgb([(x * 12) as u8, (y * 15) as u8, 90])).save(&lr).unwrap();
    let sr = d.path().join("out.png");
    run(bin().arg("upscale").arg("--model").arg(&model).arg(&lr).arg("-o").arg(&sr));
    let img = image::open(&sr).unwrap();
    assert_eq!((img.width(), img.height()), (80, 64));
}

#[test]
fn an_interrupted_run_resumes_exactly() {
    // Resuming at an odd step re-enters the middle of a reused pair batch.
    let d = tempfile::tempdir().unwrap();
    let (whole, split) = (tiny_model(&d.path().join("a")), tiny_model(&d.path().join("b")));
    train(&whole, &d.path().join("a/run"), 8);
    train(&split, &d.path().join("b/run"), 3);
    train(&split, &d.path().join("b/run"), 8);
    let (a, b) = (weights(&whole.join("grm.safetensors")), weights(&split.join("grm.safetensors")));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let diff = (x - y).abs().max().double_value(&[]);
        assert!(diff <= 1e-6, "{name}: resumed run differs by {diff:e}");
    }
    assert_eq!(log_values(&d.path().join("a/run"), "train", "loss"), log_values(&d.path().join("b/run"), "train", "loss"));
}

#[test]
fn bf16_autocast_trains_with_the_same_losses_to_bf16_accuracy() {
    let d = tempfile::tempdir().unwrap();
    let (full, half) = (tiny_model(&d.path().join("a")), tiny_model(&d.path().join("b")));
    // 12 steps: with the three-way LR mix the val loss is flat until step 8 in f32 too.
    train_with(&full, &d.path().join("a/run"), 12, &["--precision", "f32"]);
    train_with(&half, &d.path().join("b/run"), 12, &["--precision", "bf16"]);
    let (a, b) = (log_values(&d.path().join("a/run"), "train", "loss"), log_values(&d.path().join("b/run"), "train", "loss"));
    // Step 1: same weights, same batch; only the arithmetic differs.
    assert!((a[0] - b[0]).abs() <= 0.02 * a[0], "step-1 loss f32 {} vs bf16 {}", a[0], b[0]);
    let val = log_values(&d.path().join("b/run"), "val", "loss");
    assert!(val[2] < val[0], "bf16 validation loss did not fall: {val:?}");
}
