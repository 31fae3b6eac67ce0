//! End-to-end: `patchscaler train texture` and `patchscaler train rtm` on the
//! tiny preset and the small images of data/manifest.csv (the wallpapers
//! would spend the time budget on JPEG decoding), then `upscale` loads the
//! model folder they wrote.

use patchscaler::texture::Rtm;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patchscaler")).args(args).output().unwrap()
}

fn ok(o: Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{text}");
    text
}

/// The rows of data/manifest.csv whose images are at most 512 x 512, with
/// absolute paths, written as a manifest of its own in `dir`.
fn small_manifest(dir: &Path) -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let manifest = data.join("manifest.csv");
    let text =
        std::fs::read_to_string(&manifest).unwrap_or_else(|_| panic!("{} is missing: run scripts/fetch_data.sh first", manifest.display()));
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        // file,source_package,licence,width,height,split (the licence may hold quoted commas).
        let fields: Vec<&str> = line.rsplitn(4, ',').collect();
        let (w, h): (u32, u32) = (fields[2].parse().unwrap(), fields[1].parse().unwrap());
        if w * h <= 512 * 512 {
            let file = line.split(',').next().unwrap();
            out.push_str(&line.replacen(file, data.join(file).to_str().unwrap(), 1));
            out.push('\n');
        }
    }
    let path = dir.join("small.csv");
    std::fs::write(&path, out).unwrap();
    path
}

fn tiny_model(dir: &Path, name: &str) -> PathBuf {
    let model = dir.join(name);
    ok(bin(&["init", "--preset", "tiny", "-o", model.to_str().unwrap()]));
    model
}

fn upscale_loads(model: &Path, dir: &Path) {
    let input = dir.join("in.png");
    image::RgbImage::from_fn(20, 16, |x, y| image::Rgb([(x * 9) as u8, (y * 13) as u8, 90])).save(&input).unwrap();
    let out = dir.join("out.png");
    ok(bin(&["upscale", "--model", model.to_str().unwrap(), input.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    assert_eq!(image::image_dimensions(&out).unwrap(), (80, 64));
}

/// `name`'s validation values by step, from log.csv.
fn val_series(log: &Path, name: &str) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "val" && f[2] == name)
        .map(|f| (f[0].parse().unwrap(), f[3].parse().unwrap()))
        .collect()
}

#[test]
fn texture_training_raises_retrieval_accuracy_and_upscale_loads_the_result() {
    let d = tempfile::tempdir().unwrap();
    let data = small_manifest(d.path());
    let model = tiny_model(d.path(), "model");
    let run = d.path().join("run");
    let args = ["train", "texture", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap()];
    let settings = ["--out", run.to_str().unwrap(), "--steps", "20", "--val-every", "10", "--lr", "2e-3", "--quiet"];
    let text = ok(bin(&[&args[..], &settings[..]].concat()));
    assert!(text.contains("re-keyed"), "{text}");

    let top1 = val_series(&run.join("log.csv"), "top1");
    assert_eq!(top1.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 10, 20], "{top1:?}");
    let chance = val_series(&run.join("log.csv"), "top1_chance")[0].1;
    let (first, last) = (top1[0].1, top1[2].1);
    assert!(last > first, "val top-1 retrieval did not improve: {top1:?}");
    assert!(last > 3.0 * chance, "val top-1 {last} is not well above chance {chance}");
    let ntxent = val_series(&run.join("log.csv"), "ntxent");
    assert!(ntxent[2].1 < ntxent[0].1, "val NT-Xent did not fall: {ntxent:?}");
    upscale_loads(&model, d.path());
}

#[test]
fn rtm_has_the_requested_size_unit_keys_provenance_and_is_reproducible() {
    let d = tempfile::tempdir().unwrap();
    let data = small_manifest(d.path());
    let build = |model: &Path, seed: &str| {
        let m = model.to_str().unwrap();
        ok(bin(&["train", "rtm", "--model", m, "--data", data.to_str().unwrap(), "--candidates", "100", "--size", "24", "--seed", seed]))
    };
    let (a, b) = (tiny_model(d.path(), "a"), tiny_model(d.path(), "b"));
    let text = build(&a, "3");
    assert!(text.contains("100 candidate crops") && text.contains("to 24"), "{text}");

    let rtm = Rtm::load(a.join("rtm.safetensors"), tch::Device::Cpu).unwrap();
    assert_eq!(rtm.len(), 24);
    assert_eq!(rtm.meta.pool_size, 100);
    assert_eq!(rtm.meta.seed, 3);
    let norms = rtm.keys.norm_scalaropt_dim(2, [1i64].as_slice(), false);
    assert!((norms - 1.0).abs().max().double_value(&[]) < 1e-5);
    let listed = std::fs::read_to_string(&data).unwrap();
    for p in &rtm.meta.provenance {
        let (file, boxed) = p.split_once('@').unwrap();
        assert!(listed.contains(file) && boxed.ends_with(",size=32"), "{p}");
    }
    upscale_loads(&a, d.path());

    build(&b, "3");
    let bytes = |m: &Path| std::fs::read(m.join("rtm.safetensors")).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "the same seed must give the same file");
    build(&b, "4");
    assert_ne!(bytes(&a), bytes(&b), "another seed must draw other crops");
}

#[test]
fn texture_training_resumes_exactly() {
    let d = tempfile::tempdir().unwrap();
    let data = small_manifest(d.path());
    let train = |model: &Path, run: &str, steps: &str| {
        let (m, out) = (model.to_str().unwrap(), d.path().join(run));
        let args = ["train", "texture", "--model", m, "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()];
        ok(bin(&[&args[..], &["--steps", steps, "--batch", "2", "--val-batches", "1", "--quiet"][..]].concat()));
    };
    let (straight, resumed) = (tiny_model(d.path(), "straight"), tiny_model(d.path(), "resumed"));
    train(&straight, "run-straight", "4");
    train(&resumed, "run-resumed", "2");
    train(&resumed, "run-resumed", "4");
    let weights = |m: &Path| std::fs::read(m.join("texture.safetensors")).unwrap();
    assert_eq!(weights(&straight), weights(&resumed), "2 + 2 resumed steps must equal 4 straight ones");
}
