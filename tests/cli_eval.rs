//! End-to-end tests of `patchscaler eval`, `bench` and `calibrate` on a tiny,
//! randomly initialised model: the tests check the reports, not the quality.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patchscaler"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A tiny model made by `patchscaler init`, its zero-initialised Patch-DiT
/// layers then perturbed so that the DiT and its prompt reach the output.
fn tiny_model(dir: &Path) -> PathBuf {
    let p = dir.join("model");
    let o = bin().args(["init", "--preset", "tiny", "-o"]).arg(&p).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut m = patchscaler::model::Model::load(&p, tch::Device::Cpu, None).unwrap();
    m.perturb_zero_dit(0.05, 1);
    m.save(&p, false).unwrap();
    p
}

/// A textured HR image (so neither bicubic nor NIQE sees a flat field).
fn hr_image(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| {
        let v = ((x as f32 * 0.31).sin() * 60.0 + (y as f32 * 0.17).cos() * 50.0 + 128.0) as u8;
        image::Rgb([v, ((x * 5 + y * 3) % 256) as u8, ((x ^ y) % 256) as u8])
    })
    .save(path)
    .unwrap();
}

fn field(line: &str, i: usize) -> &str {
    line.split(',').nth(i).unwrap()
}

#[test]
fn eval_reports_table_csv_with_true_means_and_figures() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let hr = d.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    // Real-ESRGAN's blurs need >= 74 px; both are below NIQE's two 96 px blocks.
    hr_image(&hr.join("a.png"), 76, 76);
    hr_image(&hr.join("b.png"), 80, 76);
    let out = d.path().join("out");
    let o = bin().arg("eval").arg(&hr).arg("-o").arg(&out).arg("--model").arg(&model).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("PSNR-Y") && t.contains("seed 0") && t.contains("NIQE \"-\""), "{t}");
    assert_eq!(t.lines().filter(|l| l.starts_with("mean ")).count(), 4, "{t}");

    let csv = std::fs::read_to_string(out.join("eval.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "image,method,psnr_y,ssim_y,niqe,seconds");
    assert_eq!(lines.len(), 1 + 2 * 4 + 4, "{csv}");
    for method in ["bicubic", "coarse", "patchscaler", "uniform"] {
        let rows: Vec<&str> = lines[1..].iter().copied().filter(|l| field(l, 1) == method).collect();
        let (a, b, mean) = (rows[0], rows[1], rows[2]);
        assert_eq!((field(a, 0), field(b, 0), field(mean, 0)), ("a.png", "b.png", "mean"));
        for col in [2, 3, 5] {
            let v = |l: &str| field(l, col).parse::<f64>().unwrap();
            assert!((v(mean) - (v(a) + v(b)) / 2.0).abs() < 2e-6, "{method} column {col}: {mean}");
        }
        for row in [a, b, mean] {
            assert_eq!(field(row, 4), "", "NIQE is undefined below two blocks: {row}");
        }
        assert!(field(a, 2).parse::<f64>().unwrap() > 5.0, "{a}");
    }

    for (name, w, h) in [("a.png", 76, 76), ("b.png", 80, 76)] {
        let dims = image::image_dimensions(out.join("figures").join(name)).unwrap();
        assert_eq!(dims, (7 * w, h + 12), "{name}");
    }
}

/// The ablation flags reach the model: with a zero texture prompt the
/// PatchScaler rows change, the bicubic rows do not. On the light protocol,
/// so that `--degrade light` runs end to end too.
#[test]
fn the_prompt_ablation_changes_the_patchscaler_result() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let hr = d.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    hr_image(&hr.join("a.png"), 76, 76);
    let run = |extra: &[&str], out: &str| {
        let out = d.path().join(out);
        let o = bin().arg("eval").arg(&hr).arg("-o").arg(&out).arg("--model").arg(&model).args(["--degrade", "light"]).args(extra).output().unwrap();
        assert!(o.status.success() && text(&o).contains("LR = light degradation"), "{}", text(&o));
        let csv = std::fs::read_to_string(out.join("eval.csv")).unwrap();
        let psnr = |method: &str| {
            let row = csv.lines().find(|l| field(l, 0) == "a.png" && field(l, 1) == method).unwrap().to_string();
            field(&row, 2).parse::<f64>().unwrap()
        };
        (psnr("bicubic"), psnr("patchscaler"))
    };
    let (bic, with) = run(&[], "with");
    let (bic0, without) = run(&["--prompt", "zeros"], "without");
    assert_eq!(bic, bic0);
    assert!((with - without).abs() > 1e-4, "PSNR {with} with the prompt, {without} without");
}

#[test]
fn eval_with_a_missing_paired_lr_names_the_file() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let (hr, lr) = (d.path().join("hr"), d.path().join("lr"));
    std::fs::create_dir_all(&hr).unwrap();
    std::fs::create_dir_all(&lr).unwrap();
    hr_image(&hr.join("x.png"), 32, 32);
    let o = bin().arg("eval").arg(&hr).arg("--lr-dir").arg(&lr).arg("-o").arg(d.path().join("o")).arg("--model").arg(&model).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("no LR image named x.*"), "{}", text(&o));
}

#[test]
fn bench_writes_every_stage_for_both_precisions_and_samplings() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let out = d.path().join("bench");
    let o = bin().args(["bench", "--size", "16", "--data"]).arg(d.path()).arg("-o").arg(&out).arg("--model").arg(&model).output().unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("PGS / uniform runtime (bf16)"), "{t}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert!(json["input"].as_str().unwrap().starts_with("procedural"), "{json}");
    assert_eq!(json["output_size"], serde_json::json!([64, 64]));
    let configs = json["configs"].as_array().unwrap();
    let mut seen: Vec<String> = configs.iter().map(|c| format!("{} {}", c["precision"].as_str().unwrap(), c["sampling"].as_str().unwrap())).collect();
    seen.sort();
    assert_eq!(seen, ["bf16 pgs", "bf16 uniform", "f32 pgs", "f32 uniform"]);
    for c in configs {
        let stages: Vec<&str> = c["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        for want in ["encode", "grm", "texture prompt", "decode", "color fix"] {
            assert!(stages.contains(&want), "{want} missing in {stages:?}");
        }
        assert!(stages.iter().any(|s| *s == "dit"), "{stages:?}");
        assert!(c["peak_rss_mib"].as_f64().unwrap() > 1.0);
        assert!(c["total_seconds"].as_f64().unwrap() > 0.0);
    }
    for p in ["f32", "bf16"] {
        assert!(json["pgs_to_uniform"][p].as_f64().unwrap() > 0.0, "{json}");
    }
}

#[test]
fn tradeoff_writes_csv_and_plot() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let data = d.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    hr_image(&data.join("v1.png"), 80, 72);
    hr_image(&data.join("v2.png"), 64, 64);
    std::fs::write(data.join("manifest.csv"), "file,split\nv1.png,val\nv2.png,val\n").unwrap();
    let out = d.path().join("t");
    let o = bin()
        .args(["bench", "--tradeoff", "--crop-hr", "64", "--degrade", "bicubic", "--precisions", "f32", "--data"])
        .arg(&data)
        .arg("-o")
        .arg(&out)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(out.join("tradeoff.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "setting,family,seconds,psnr_y,niqe");
    assert_eq!(lines.len(), 1 + 5 + 3, "{csv}");
    assert!(lines.iter().any(|l| l.starts_with("PGS balanced,pgs,")), "{csv}");
    assert_eq!(image::image_dimensions(out.join("tradeoff.png")).unwrap(), (1200, 520));
}

/// The PGS thresholds in a model folder's model.toml.
fn thresholds(model: &Path) -> Vec<f64> {
    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(model.join("model.toml")).unwrap()).unwrap();
    cfg["pgs"]["groups"].as_array().unwrap().iter().map(|g| g["min_conf_exclusive"].as_float().unwrap()).collect()
}

#[test]
fn calibrate_writes_thresholds_that_split_the_patches() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let hr = d.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        image::RgbImage::from_fn(160, 144, |x, y| {
            let v = ((x as f32 * (0.1 + 0.1 * i as f32)).sin() * 90.0 + 128.0) as u8;
            image::Rgb([v, ((x * 3 + y * (i as u32 + 2)) % 256) as u8, (y % 200) as u8])
        })
        .save(hr.join(name))
        .unwrap();
    }
    let before = thresholds(&model);
    let run = |extra: &[&str]| {
        let o = bin().arg("calibrate").arg("--model").arg(&model).arg("--data").arg(&hr).args(["--crop-hr", "128"]).args(extra).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    let t = run(&["--dry-run"]);
    assert!(t.contains("patches from 3 images") && t.contains("thresholds"), "{t}");
    assert_eq!(thresholds(&model), before, "--dry-run must not write");

    run(&["--shares", "0.5,0.25"]);
    let after = thresholds(&model);
    assert_eq!(after.len(), 3);
    assert!(after[0] > after[1] && after[1] >= 0.0 && after[2] == 0.0, "{after:?}");
    assert_ne!(after, before);

    let lr = d.path().join("in.png");
    image::RgbImage::from_fn(24, 20, |x, y| image::Rgb([(x * 9) as u8, (y * 11) as u8, 60])).save(&lr).unwrap();
    let o = bin().arg("upscale").arg("--model").arg(&model).arg(&lr).arg("-o").arg(d.path().join("out.png")).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));

    let bad = bin().arg("calibrate").arg("--model").arg(&model).arg("--data").arg(&hr).args(["--shares", "0.7,0.5"]).output().unwrap();
    assert!(!bad.status.success() && text(&bad).contains("shares"), "{}", text(&bad));
}

/// The background trainer's gate on real `eval` folders: an evaluation is
/// not better than itself, a candidate whose PatchScaler images all score
/// higher is, and `--plan` names both trainable stages.
#[test]
fn compare_gates_eval_folders_and_plans_the_next_stage() {
    let d = tempfile::tempdir().unwrap();
    let model = tiny_model(d.path());
    let hr = d.path().join("hr");
    std::fs::create_dir_all(&hr).unwrap();
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        // Small: NIQE is undefined (the gate lists it as not compared).
        hr_image(&hr.join(name), 76 + 4 * i as u32, 76);
    }
    let (base, cand) = (d.path().join("base"), d.path().join("cand"));
    for p in ["bicubic", "light", "realesrgan"] {
        let o = bin().arg("eval").arg(&hr).arg("-o").arg(base.join(p)).arg("--model").arg(&model)
            .args(["--degrade", p, "--no-uniform"]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        // The candidate: every PatchScaler image 0.5 dB better.
        let csv = std::fs::read_to_string(base.join(p).join("eval.csv")).unwrap();
        let better: String = csv.lines().map(|l| {
            let mut f: Vec<String> = l.split(',').map(String::from).collect();
            if f[1] == "patchscaler" && f[0] != "mean" {
                f[2] = format!("{:.6}", f[2].parse::<f64>().unwrap() + 0.5);
            }
            f.join(",") + "\n"
        }).collect();
        std::fs::create_dir_all(cand.join(p)).unwrap();
        std::fs::write(cand.join(p).join("eval.csv"), better).unwrap();
    }
    let compare = |a: &Path, b: &Path| bin().arg("compare").arg(a).arg(b).output().unwrap();
    let same = compare(&base, &base);
    assert_eq!(same.status.code(), Some(1), "{}", text(&same));
    assert!(text(&same).contains("not better"), "{}", text(&same));
    let up = compare(&base, &cand);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    assert!(text(&up).contains("| realesrgan | PSNR-Y |") && text(&up).contains("better"), "{}", text(&up));
    assert!(text(&up).contains("| light | NIQE | - |"), "{}", text(&up));
    let down = compare(&cand, &base);
    assert_eq!(down.status.code(), Some(1), "{}", text(&down));
    assert!(text(&down).contains("worse"), "{}", text(&down));
    let plan = bin().args(["compare", "--plan"]).arg(&base).output().unwrap();
    let stages: Vec<String> = String::from_utf8_lossy(&plan.stdout).lines().map(|l| l.split(' ').next().unwrap().to_string()).collect();
    assert!(plan.status.success() && stages.len() == 2 && stages.contains(&"grm".into()) && stages.contains(&"dit".into()), "{}", text(&plan));
    let missing = bin().arg("compare").arg(&base).arg(d.path().join("nowhere")).output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("nowhere"), "{}", text(&missing));
}
