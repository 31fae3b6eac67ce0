//! End-to-end test of `patchscaler train dit`: the real binary trains a
//! tiny model's Patch-DiT on the project's images for a few dozen steps; the
//! validation eps MSE must fall, and `upscale` must load what it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patchscaler"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn manifest() -> PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/manifest.csv");
    assert!(m.is_file(), "{} is missing: run scripts/fetch_data.sh first", m.display());
    m
}

/// (step, value) of every validation row named `name` in log.csv.
fn val_rows(log: &Path, name: &str) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "val" && f[2] == name)
        .map(|f| (f[0].parse().unwrap(), f[3].parse().unwrap()))
        .collect()
}

/// `train dit` to `steps` at batch 1 on 96 px crops, validating every 2 steps.
fn train_briefly(model: &Path, data: &Path, out: &Path, steps: &str) -> Output {
    bin()
        .args(["train", "dit", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--steps", steps, "--batch", "1", "--crop", "96", "--val-every", "2", "--val-batches", "1", "--quiet"])
        .output()
        .unwrap()
}

#[test]
fn trains_the_tiny_patch_dit_and_upscale_loads_it() {
    let data = manifest();
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    let o = bin().args(["init", "--preset", "tiny", "-o"]).arg(&model).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let before = std::fs::read(model.join("dit.safetensors")).unwrap();

    let run = d.path().join("run");
    let o = bin()
        .args(["train", "dit", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&run)
        .args(["--steps", "24", "--batch", "2", "--crop", "96", "--lr", "1e-3", "--val-every", "8", "--val-batches", "1", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("EMA weights"), "{}", text(&o));

    let eps = val_rows(&run.join("log.csv"), "eps_mse");
    assert_eq!(eps.iter().map(|r| r.0).collect::<Vec<_>>(), [8, 16, 24], "validation rows: {eps:?}");
    let (first, last) = (eps[0].1, eps[2].1);
    assert!(last < 0.9 * first, "validation eps MSE did not fall: {eps:?}");
    assert_eq!(val_rows(&run.join("log.csv"), "x0_mse_sampled").len(), 3);
    assert_ne!(std::fs::read(model.join("dit.safetensors")).unwrap(), before, "dit.safetensors not rewritten");
    // What the model folder holds is the EMA average, not the raw weights.
    let written = tch::Tensor::read_safetensors(model.join("dit.safetensors")).unwrap();
    let ema: std::collections::HashMap<_, _> =
        tch::Tensor::read_safetensors(run.join("checkpoint/ema-dit.safetensors")).unwrap().into_iter().collect();
    assert_eq!(written.len(), ema.len());
    for (name, t) in &written {
        assert!(t.equal(&ema[name]), "{name} differs from the EMA weights");
    }

    let inp = d.path().join("in.png");
    image::RgbImage::from_fn(24, 24, |x, y| image::Rgb([(x * 9) as u8, (y * 7) as u8, ((x + y) * 4) as u8])).save(&inp).unwrap();
    let out = d.path().join("out.png");
    let o = bin().arg("upscale").arg("--model").arg(&model).arg(&inp).arg("-o").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(image::image_dimensions(&out).unwrap(), (96, 96));
}

#[test]
#[ignore = "slow: three training runs (about a minute on 2 busy cores)"]
fn an_interrupted_run_resumes_to_the_same_log_and_weights() {
    let data = manifest();
    let d = tempfile::tempdir().unwrap();
    let train = |model: &Path, out: &str, steps: &str| {
        let o = train_briefly(model, &data, &d.path().join(out), steps);
        assert!(o.status.success(), "{}", text(&o));
    };
    let (whole, split) = (d.path().join("whole"), d.path().join("split"));
    for m in [&whole, &split] {
        let o = bin().args(["init", "--preset", "tiny", "-o"]).arg(m).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    train(&whole, "run-whole", "4");
    train(&split, "run-split", "2");
    train(&split, "run-split", "4");
    // Everything but the wall-clock measures must match: the time column,
    // and the `data_wait` rows (seconds spent waiting for the loader).
    let rows = |run: &str| -> Vec<String> {
        let log = std::fs::read_to_string(d.path().join(run).join("log.csv")).unwrap();
        log.lines()
            .filter(|l| l.split(',').nth(2) != Some("data_wait"))
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(rows("run-whole"), rows("run-split"));
    let dit = |m: &Path| std::fs::read(m.join("dit.safetensors")).unwrap();
    assert!(dit(&whole) == dit(&split), "resumed weights differ");
}

/// The background trainer calibrates the model's PGS thresholds between
/// rounds (scripts/train_background.sh); the next round's `train dit` must
/// resume from its checkpoint. A change to what the Patch-DiT learns (the
/// noise schedule) must still be refused.
#[test]
fn a_run_resumes_after_calibrate_rewrote_the_thresholds_but_not_after_the_schedule_changed() {
    let data = manifest();
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    let o = bin().args(["init", "--preset", "tiny", "-o"]).arg(&model).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let train = |steps: &str| train_briefly(&model, &data, &d.path().join("run"), steps);
    let o = train("2");
    assert!(o.status.success(), "{}", text(&o));
    let toml_path = model.join("model.toml");
    let edit = |from: &str, to: &str| {
        let t = std::fs::read_to_string(&toml_path).unwrap();
        assert!(t.contains(from), "{from} not in\n{t}");
        std::fs::write(&toml_path, t.replacen(from, to, 1)).unwrap();
    };
    edit("min_conf_exclusive = 0.95", "min_conf_exclusive = 0.93");
    let o = train("4");
    assert!(o.status.success(), "new thresholds stopped the resume: {}", text(&o));
    let steps: Vec<u64> = val_rows(&d.path().join("run/log.csv"), "eps_mse").iter().map(|r| r.0).collect();
    assert_eq!(steps, [2, 4], "resumed, not restarted");

    edit("end = 0.012", "end = 0.013");
    let o = train("6");
    assert!(!o.status.success() && text(&o).contains("checkpoint was made with another config"), "{}", text(&o));
}
