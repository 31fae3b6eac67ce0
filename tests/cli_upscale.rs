//! End-to-end tests of the real `patchscaler upscale` binary on a tiny,
//! randomly initialised model: formats, layouts, and every kind of bad input.

use image::{ImageBuffer, Luma, Rgb, Rgba};
use patchscaler::model::{Model, ModelConfig};
use std::path::Path;

mod common;
use common::{bin, rgb_image, text, tiny_model};

fn upscale(model: &Path, args: &[&str]) -> std::process::Output {
    let mut c = bin();
    c.arg("upscale").arg("--model").arg(model).args(args);
    c.output().unwrap()
}

#[test]
fn upscales_x4_and_prints_a_summary_whose_counts_add_up() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in.png");
    rgb_image(24, 20).save(&inp).unwrap();
    let out = d.path().join("out.png");
    let qm = d.path().join("qmap.png");
    let o = upscale(&model, &[inp.to_str().unwrap(), "-o", out.to_str().unwrap(), "--qmap", qm.to_str().unwrap(), "--verbose"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (96, 80));
    assert!(qm.exists(), "qmap figure not written");
    // "patches P (simple=a medium=b hard=c)" must add up.
    let line = t.lines().find(|l| l.contains("patches")).expect(&t);
    let after = line.split("patches ").nth(1).unwrap();
    let total: usize = after.split_whitespace().next().unwrap().parse().unwrap();
    let inner = after.split('(').nth(1).unwrap().split(')').next().unwrap();
    let sum: usize = inner.split_whitespace().map(|kv| kv.split('=').nth(1).unwrap().parse::<usize>().unwrap()).sum();
    assert_eq!(total, sum, "{line}");
    assert!(line.contains("denoiser evals"), "{line}");
}

#[test]
fn same_seed_same_bytes_and_other_scales_resample() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in.png");
    rgb_image(20, 20).save(&inp).unwrap();
    let a = d.path().join("a.png");
    let b = d.path().join("b.png");
    for out in [&a, &b] {
        let o = upscale(&model, &[inp.to_str().unwrap(), "-o", out.to_str().unwrap(), "--seed", "7"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let c = d.path().join("c.png");
    let o = upscale(&model, &[inp.to_str().unwrap(), "-o", c.to_str().unwrap(), "--scale", "2.5"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(image::image_dimensions(&c).unwrap(), (50, 50));
}

/// Issue 21, defect 7: the README promised "same seed, same bytes", and
/// `--threads 1` and `--threads 2` gave different bytes. libtorch's CPU
/// kernels (oneDNN's 1 x 1 convolution, MKL's small matrix products, even in
/// MKL's strict reproducibility mode) sum in an order set by the thread
/// count, so the promise is now what holds: the same seed and the same
/// `--threads` give the same bytes. A 16-bit output shows a change of 1e-7.
#[test]
fn same_seed_and_threads_same_bytes_as_the_readme_says() {
    let readme = include_str!("../README.md").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(readme.contains("the same seed, the same `--threads` and the same precision give the same bytes"), "the README's promise changed; keep this test to it");
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in16.png");
    ImageBuffer::from_fn(40, 28, |x, y| Rgb([(x * 1500 + y * 300) as u16, (y * 2300) as u16, ((x * y * 97) % 65536) as u16]))
        .save(&inp)
        .unwrap();
    for threads in ["1", "2", "3"] {
        let runs: Vec<Vec<u8>> = (0..2)
            .map(|i| {
                let out = d.path().join(format!("t{threads}_{i}.png"));
                let args = [inp.to_str().unwrap(), "-o", out.to_str().unwrap(), "--threads", threads, "--seed", "5"];
                let o = upscale(&model, &args);
                assert!(o.status.success(), "{}", text(&o));
                std::fs::read(&out).unwrap()
            })
            .collect();
        assert!(runs[0] == runs[1], "--threads {threads}: two runs differ");
    }
}

#[test]
fn bicubic_detail_changes_the_output_and_refuses_weights_outside_0_1() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in.png");
    rgb_image(20, 16).save(&inp).unwrap();
    let outputs: Vec<_> = ["0", "1"]
        .iter()
        .map(|w| {
            let out = d.path().join(format!("w{w}.png"));
            let o = upscale(&model, &[inp.to_str().unwrap(), "-o", out.to_str().unwrap(), "--bicubic-detail", w, "--no-detail-gate"]);
            assert!(o.status.success(), "{}", text(&o));
            image::open(&out).unwrap().to_rgb8()
        })
        .collect();
    assert_ne!(outputs[0], outputs[1], "the decoder's loss is added back");
    let bad = d.path().join("bad.png");
    let o = upscale(&model, &[inp.to_str().unwrap(), "-o", bad.to_str().unwrap(), "--bicubic-detail", "1.5"]);
    assert!(!o.status.success() && text(&o).contains("not in [0, 1]"), "{}", text(&o));
    assert!(!bad.exists());
}

#[test]
fn formats_bit_depths_gray_and_alpha_keep_their_layout() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inputs = d.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    rgb_image(16, 16).save(inputs.join("a.jpg")).unwrap();
    rgb_image(16, 16).save(inputs.join("b.webp")).unwrap();
    rgb_image(16, 16).save(inputs.join("c.tiff")).unwrap();
    ImageBuffer::from_fn(16, 16, |x, y| Luma([(x * 16 + y) as u8])).save(inputs.join("d_gray.png")).unwrap();
    ImageBuffer::from_fn(16, 16, |x, _| Rgba([200u8, 100, 50, (x * 16) as u8])).save(inputs.join("e_alpha.png")).unwrap();
    ImageBuffer::from_fn(16, 16, |x, y| Rgb([(x * 4000) as u16, (y * 4000) as u16, 1234u16])).save(inputs.join("f16.png")).unwrap();
    let out = d.path().join("out");
    let o = upscale(&model, &[inputs.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for n in ["a", "b", "c", "d_gray", "e_alpha", "f16"] {
        let p = out.join(format!("{n}_x4.png"));
        let img = image::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!((img.width(), img.height()), (64, 64), "{n}");
        let c = img.color();
        match n {
            "d_gray" => assert_eq!(c, image::ColorType::L8),
            "e_alpha" => {
                assert_eq!(c, image::ColorType::Rgba8);
                // Alpha is upscaled from a horizontal ramp: it must still rise left to right.
                let rgba = img.to_rgba8();
                assert!(rgba.get_pixel(60, 30)[3] > rgba.get_pixel(4, 30)[3] + 150);
            }
            "f16" => assert_eq!(c, image::ColorType::Rgb16),
            _ => assert_eq!(c, image::ColorType::Rgb8),
        }
    }
}

/// A JPEG with an EXIF orientation of 6 (rotate 90 clockwise) must come out
/// rotated: a 16 x 8 stored image becomes 32 x 64 at x4.
#[test]
fn exif_orientation_is_applied() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let mut jpeg = Vec::new();
    rgb_image(16, 8).write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    let exif: Vec<u8> = [
        b"Exif\0\0".as_slice(),
        b"II*\0\x08\0\0\0",
        &[1, 0],
        &[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0],
        &[0, 0, 0, 0],
    ]
    .concat();
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    app1.extend_from_slice(&exif);
    let mut file = jpeg[..2].to_vec();
    file.extend_from_slice(&app1);
    file.extend_from_slice(&jpeg[2..]);
    let inp = d.path().join("rot.jpg");
    std::fs::write(&inp, file).unwrap();
    let out = d.path().join("rot_x4.png");
    let o = upscale(&model, &[inp.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(image::image_dimensions(&out).unwrap(), (32, 64));
}

#[test]
fn bad_inputs_get_one_clear_line_and_the_batch_goes_on() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let good = d.path().join("good.png");
    rgb_image(16, 16).save(&good).unwrap();
    let empty = d.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let corrupt = d.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n this is not really a png at all").unwrap();
    let truncated = d.path().join("truncated.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let unsupported = d.path().join("notes.txt");
    std::fs::write(&unsupported, b"hello, I am text").unwrap();
    let big = d.path().join("big.png");
    rgb_image(1200, 1000).save(&big).unwrap();
    let missing = d.path().join("missing.png");
    let out = d.path().join("out");
    let mut args: Vec<&str> = vec![];
    let names = [&empty, &corrupt, &truncated, &unsupported, &big, &missing, &good];
    for p in names {
        args.push(p.to_str().unwrap());
    }
    args.extend(["-o", out.to_str().unwrap(), "--memory-limit", "1024"]);
    let o = upscale(&model, &args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for (p, what) in [
        (&empty, "empty"),
        (&corrupt, ""),
        (&truncated, ""),
        (&unsupported, "not an image in a supported format"),
        (&big, "--memory-limit 1024"),
        (&missing, "no such file"),
    ] {
        let line = t.lines().find(|l| l.starts_with("error:") && l.contains(p.to_str().unwrap()));
        let line = line.unwrap_or_else(|| panic!("no error line for {}:\n{t}", p.display()));
        assert!(line.contains(what), "{line}");
    }
    assert!(!t.contains("panicked"), "{t}");
    assert!(out.join("good_x4.png").exists(), "the good image was not processed:\n{t}");
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "half-written outputs left behind: {leftovers:?}");
}

#[test]
fn never_overwrites_an_input() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in.png");
    rgb_image(16, 16).save(&inp).unwrap();
    let before = std::fs::read(&inp).unwrap();
    let o = upscale(&model, &[inp.to_str().unwrap(), "-o", inp.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("refusing to overwrite"), "{}", text(&o));
    assert_eq!(std::fs::read(&inp).unwrap(), before);
}

#[test]
fn missing_or_mismatched_model_files_are_named() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in.png");
    rgb_image(16, 16).save(&inp).unwrap();
    let out = d.path().join("o.png");
    std::fs::remove_file(model.join("grm.safetensors")).unwrap();
    // A DiT from another preset: wrong shapes everywhere.
    let other = Model::init(ModelConfig::cpu(), tch::Device::Cpu, 0).unwrap();
    patchscaler::model::files::save(&other.dit_vs, &model.join("dit.safetensors"), false).unwrap();
    let o = upscale(&model, &[inp.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("grm.safetensors") && t.contains("missing"), "{t}");
    assert!(t.contains("dit.safetensors") && t.contains("shape"), "{t}");
    assert!(!out.exists());
    let nowhere = d.path().join("no-model");
    let o = upscale(&nowhere, &[inp.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(text(&o).contains("model folder not found"), "{}", text(&o));
}

#[test]
fn bf16_where_the_cpu_emulates_it_warns_once_and_auto_runs_f32() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let inp = d.path().join("in.png");
    rgb_image(16, 16).save(&inp).unwrap();
    // oneDNN capped at AVX2 emulates bf16, as an AVX2-only CPU does.
    let run = |precision: &str| {
        let out = d.path().join(format!("{precision}.png"));
        let o = bin()
            .arg("upscale").arg("--model").arg(&model).arg(&inp).arg("-o").arg(&out)
            .args(["--precision", precision])
            .env("ONEDNN_MAX_CPU_ISA", "AVX2")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        (text(&o), std::fs::read(&out).unwrap())
    };
    let (t, _) = run("bf16");
    assert_eq!(t.matches("warning: --precision bf16 on this CPU: no native bf16").count(), 1, "{t}");
    let (t_auto, auto) = run("auto");
    let (_, f32) = run("f32");
    assert!(!t_auto.contains("warning"), "{t_auto}");
    assert!(auto == f32, "auto is f32 here");
    let o = bin().arg("devices").env("ONEDNN_MAX_CPU_ISA", "AVX2").output().unwrap();
    assert!(text(&o).contains("precision auto: f32 (no native bf16"), "{}", text(&o));
}
