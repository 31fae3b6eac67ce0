//! Nothing changes for users when the code under the commands moves: the
//! bytes of a set of outputs (`upscale` whole and in regions, each preset,
//! uniform, alpha, gray, 16-bit, a non-native scale, the group figure, the
//! colour fixes and finishing flags, `eval`'s figure, and `serve`'s three
//! images) at fixed seeds, recorded in `tests/app_bytes.json`.
//!
//! Every library that picks its kernels by CPU is held to the AVX2 path
//! (ATen, oneDNN, MKL's conditional-reproducibility mode), f32, one thread,
//! so the record should hold on every x86-64 machine these tests run on
//! (AVX2-only EPYC, AVX-512 and AMX Xeons). Where the machine is not of the
//! class that recorded it, an output whose hash differs is still held to
//! its block means (16 px blocks, larger for large outputs) within half a
//! level: a change in the code moves those by far more, rounding in the
//! last bit of a kernel does not.
//!
//! `PATCHSCALER_RECORD_BYTES=1 cargo test --release --test app_bytes`
//! rewrites the record: only on a commit whose outputs are the reference.

mod common;
mod serve_common;

use common::text;
use image::{ImageBuffer, Luma, Rgb, Rgba};
use serde_json::{json, Value};
use serve_common::{bin, follow, get, png_bytes, rgb_image, submit, tiny_model, Server};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const RECORD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/app_bytes.json");
/// At most this many blocks a side (larger images, larger blocks).
const BLOCKS: u32 = 16;
const TOLERANCE: f64 = 0.5;

/// One output: its bytes' SHA-256 and its block means (8-bit levels).
struct Output {
    sha256: String,
    blocks: Vec<f64>,
}

fn output(bytes: &[u8]) -> Output {
    let img = image::load_from_memory(bytes).unwrap().to_rgba32f();
    let (w, h) = img.dimensions();
    let side = w.max(h).div_ceil(BLOCKS).max(16);
    let mut blocks = Vec::new();
    for by in (0..h).step_by(side as usize) {
        for bx in (0..w).step_by(side as usize) {
            let mut sum = [0f64; 4];
            let mut n = 0f64;
            for y in by..(by + side).min(h) {
                for x in bx..(bx + side).min(w) {
                    let p = img.get_pixel(x, y).0;
                    (0..4).for_each(|c| sum[c] += p[c] as f64);
                    n += 1.0;
                }
            }
            blocks.extend(sum.iter().map(|s| (s / n * 255.0 * 10.0).round() / 10.0));
        }
    }
    Output { sha256: format!("{:x}", Sha256::digest(bytes)), blocks }
}

/// The vendor and widest vector ISA: what decides which kernels would run
/// without the pins.
fn machine_class() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let vendor = info
        .lines()
        .find_map(|l| l.strip_prefix("vendor_id").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown".into());
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let isa = if has("amx_bf16") {
        "amx"
    } else if has("avx512_bf16") {
        "avx512_bf16"
    } else if has("avx512f") {
        "avx512"
    } else {
        "avx2"
    };
    format!("{vendor} {isa}")
}

/// Set before anything runs: the children (and the server) inherit it, and
/// this is the binary's only test, so nothing races the change.
fn pin_kernels() {
    for (k, v) in [("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_CBWR", "AVX2"), ("OMP_NUM_THREADS", "1")] {
        std::env::set_var(k, v);
    }
}

/// The output's bytes and the command's `--verbose` summary.
fn upscale(model: &Path, input: &Path, out: &Path, args: &[&str]) -> (Vec<u8>, String) {
    let mut c = bin();
    c.arg("upscale").arg("--model").arg(model).arg(input).arg("-o").arg(out);
    c.args(["--threads", "1", "--precision", "f32", "--verbose"]).args(args);
    let o = c.output().unwrap();
    assert!(o.status.success(), "upscale {args:?}: {}", text(&o));
    (std::fs::read(out).unwrap(), text(&o))
}

fn cli_outputs(model: &Path, dir: &Path, got: &mut BTreeMap<String, Output>) {
    let (inputs, dir) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&inputs).unwrap();
    let rgb = inputs.join("rgb.png");
    rgb_image(40, 32).save(&rgb).unwrap();
    let mut case = |name: &str, input: &Path, args: &[&str]| {
        let out = dir.join(format!("{name}.png"));
        let (bytes, summary) = upscale(model, input, &out, args);
        got.insert(format!("upscale {name}"), output(&bytes));
        summary
    };
    case("balanced", &rgb, &["--seed", "7"]);
    case("fast", &rgb, &["--seed", "7", "--preset", "fast"]);
    case("quality", &rgb, &["--seed", "7", "--preset", "quality"]);
    case("uniform", &rgb, &["--seed", "7", "--uniform"]);
    case("thresholds", &rgb, &["--seed", "7", "--thresholds", "0.9", "--tau", "500,1000", "--steps", "4,6"]);
    case("scale_2.5", &rgb, &["--seed", "7", "--scale", "2.5"]);
    case("adain_no_gate", &rgb, &["--seed", "7", "--colorfix", "adain", "--no-detail-gate", "--bicubic-detail", "0.5"]);
    // A limit that only regions fit (the memory plan is the shipped model's).
    let big = inputs.join("big.png");
    rgb_image(192, 192).save(&big).unwrap();
    let summary = case("regions", &big, &["--seed", "7", "--memory-limit", "1000"]);
    assert!(summary.contains("in regions of"), "{summary}");
    let alpha = inputs.join("alpha.png");
    ImageBuffer::from_fn(40, 32, |x, y| Rgba([(x * 6) as u8, (y * 7) as u8, 90u8, ((x + y) * 4) as u8])).save(&alpha).unwrap();
    case("alpha", &alpha, &["--seed", "3"]);
    let gray = inputs.join("gray.png");
    ImageBuffer::from_fn(40, 32, |x, y| Luma([((x * y) % 256) as u8])).save(&gray).unwrap();
    case("gray", &gray, &["--seed", "3"]);
    let deep = inputs.join("deep.png");
    ImageBuffer::from_fn(40, 32, |x, y| Rgb([(x * 1500 + y * 300) as u16, (y * 2300) as u16, ((x * y * 97) % 65536) as u16]))
        .save(&deep)
        .unwrap();
    case("16bit", &deep, &["--seed", "3"]);
    let qmap = dir.join("qmap_figure.png");
    upscale(model, &rgb, &dir.join("with_qmap.png"), &["--seed", "7", "--qmap", qmap.to_str().unwrap()]);
    got.insert("upscale qmap figure".into(), output(&std::fs::read(&qmap).unwrap()));
}

fn eval_figure(model: &Path, dir: &Path, got: &mut BTreeMap<String, Output>) {
    let hr = dir.join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    rgb_image(64, 64).save(hr.join("e.png")).unwrap();
    let out = dir.join("eval");
    let mut c = bin();
    c.arg("eval").arg(&hr).arg("-o").arg(&out).arg("--model").arg(model);
    c.args(["--threads", "1", "--seed", "5", "--degrade", "light"]);
    let o = c.output().unwrap();
    assert!(o.status.success(), "eval: {}", text(&o));
    got.insert("eval figure".into(), output(&std::fs::read(out.join("figures/e.png")).unwrap()));
}

fn serve_outputs(model: &Path, dir: &Path, got: &mut BTreeMap<String, Output>) {
    let s = Server::start(model, &dir.join("tmp"), &["--threads", "1", "--precision", "f32", "--devices", "cpu"]);
    let png = png_bytes(&rgb_image(40, 32));
    let (st, v) = submit(&s.url, &[("image", Some("in.png"), &png), ("preset", None, b"quality"), ("seed", None, b"11")]);
    assert_eq!(st, 202, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let events = follow(&s.url, &id, 1000);
    assert_eq!(events.last().unwrap()["state"], "done", "{events:?}");
    for f in ["result.png", "bicubic.png", "qmap.png"] {
        let (st, _, b) = get(&format!("{}/api/jobs/{id}/{f}", s.url));
        assert_eq!(st, 200, "{f}");
        got.insert(format!("serve {f}"), output(&b));
    }
}

#[test]
fn outputs_keep_their_recorded_bytes() {
    pin_kernels();
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let mut got = BTreeMap::new();
    cli_outputs(&model, d.path(), &mut got);
    eval_figure(&model, d.path(), &mut got);
    serve_outputs(&model, d.path(), &mut got);
    let class = machine_class();

    if std::env::var_os("PATCHSCALER_RECORD_BYTES").is_some() {
        let cases: serde_json::Map<String, Value> =
            got.iter().map(|(k, o)| (k.clone(), json!({"sha256": o.sha256, "blocks": o.blocks}))).collect();
        let record = json!({"recorded_on": class, "cases": cases});
        std::fs::write(RECORD, serde_json::to_string_pretty(&record).unwrap() + "\n").unwrap();
        eprintln!("wrote {RECORD} ({} outputs, {class})", got.len());
        return;
    }
    let record: Value = serde_json::from_str(&std::fs::read_to_string(RECORD).unwrap()).unwrap();
    let same_class = record["recorded_on"] == class.as_str();
    let cases = record["cases"].as_object().unwrap();
    assert_eq!(
        cases.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the record's outputs are not this test's: record again on the reference commit"
    );
    let mut failures = Vec::new();
    for (name, o) in &got {
        let want = &cases[name];
        if want["sha256"] == o.sha256.as_str() {
            continue;
        }
        let blocks: Vec<f64> = want["blocks"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let worst = if blocks.len() == o.blocks.len() {
            blocks.iter().zip(&o.blocks).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max)
        } else {
            f64::INFINITY
        };
        if same_class || worst > TOLERANCE {
            failures.push(format!("{name}: bytes differ, block means by up to {worst:.2} levels"));
        } else {
            eprintln!("{name}: bytes differ on {class} (recorded on {}), block means within {worst:.2} levels", record["recorded_on"]);
        }
    }
    assert!(
        failures.is_empty(),
        "outputs changed (machine {class}, record from {}):\n{}",
        record["recorded_on"],
        failures.join("\n")
    );
}
