//! Batches under a scheduler, through the real binary: `--shard I/N`
//! splits the sorted inputs disjointly, `--skip-existing` makes a killed
//! and restarted batch redo nothing it finished, `--manifest` records one
//! JSON line per image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, tiny_model};

/// `n` small images in `dir`, named i0.png, i1.png, ...
fn images(dir: &Path, n: usize, side: u32) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let p = dir.join(format!("i{i}.png"));
            image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 9 + i as u32 * 30) as u8, (y * 7) as u8, ((x ^ y) * 5) as u8]))
                .save(&p)
                .unwrap();
            p
        })
        .collect()
}

fn manifest(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    let t = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{t}");
    t
}

#[test]
fn shards_split_the_batch_and_name_outputs_as_one_run_would() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inputs = images(&d.path().join("in"), 5, 12);
    let (whole, split) = (d.path().join("whole"), d.path().join("split"));
    ok(bin().arg("upscale").arg(d.path().join("in")).arg("-o").arg(&whole).arg("--model").arg(&model).arg("--quiet"));
    let mut seen = Vec::new();
    for i in 0..2 {
        let m = d.path().join(format!("m{i}.jsonl"));
        let t = ok(bin()
            .arg("upscale")
            .arg(d.path().join("in"))
            .arg("-o")
            .arg(&split)
            .args(["--shard", &format!("{i}/2"), "--manifest"])
            .arg(&m)
            .arg("--model")
            .arg(&model));
        let lines = manifest(&m);
        assert_eq!(lines.len(), if i == 0 { 3 } else { 2 }, "{t}");
        for l in lines {
            assert_eq!(l["status"], "done");
            seen.push(l["input"].as_str().unwrap().to_string());
            let out = PathBuf::from(l["output"].as_str().unwrap());
            let twin = whole.join(out.file_name().unwrap());
            assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&twin).unwrap(), "{}", out.display());
            assert_eq!(l["input_size"], serde_json::json!([12, 12]));
            assert_eq!(l["output_size"], serde_json::json!([48, 48]));
        }
    }
    seen.sort();
    let want: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(seen, want);
    let o = bin().arg("upscale").arg(d.path().join("in")).arg("-o").arg(&split).args(["--shard", "2/2"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("I/N"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A batch killed mid-way and restarted with --skip-existing redoes nothing
/// it finished: every image is `done` exactly once over the two runs' manifest.
#[test]
fn a_killed_batch_restarts_without_redoing_finished_images() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let n = 8;
    images(&d.path().join("in"), n, 40);
    let (out, m) = (d.path().join("out"), d.path().join("manifest.jsonl"));
    let cmd = || {
        let mut c = bin();
        c.arg("upscale").arg(d.path().join("in")).arg("-o").arg(&out).arg("--skip-existing").arg("--manifest").arg(&m).arg("--model").arg(&model).arg("--quiet");
        c
    };
    let mut child = cmd().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while manifest(&m).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(120), "the first run finished no two images");
        assert!(child.try_wait().unwrap().is_none(), "the first run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = manifest(&m).len();
    assert!(first < n, "the kill came too late to test a restart");
    ok(&mut cmd());

    let mut status: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in manifest(&m) {
        status.entry(l["input"].as_str().unwrap().to_string()).or_default().push(l["status"].as_str().unwrap().to_string());
    }
    assert_eq!(status.len(), n);
    for (input, s) in &status {
        // Finished before the kill: `exists` after the restart, never `done`
        // twice. (An output renamed into place just before the kill, its
        // line not yet written, shows as `exists` alone.)
        assert!(s == &["done"] || s == &["done", "exists"] || s == &["exists"], "{input}: {s:?}");
    }
    let finished_first = status.values().filter(|s| s.len() == 2).count();
    assert!(finished_first >= 2, "{status:?}");
    for i in 0..n {
        assert!(out.join(format!("i{i}_x4.png")).is_file());
    }
}
