//! The GPU training procedure (scripts/gpu/train.sh), dry-run on the CPU with
//! a tiny model and a few seconds per stage: every stage runs in order, a
//! model is published after each, the returned parts unpack into a model
//! folder that `upscale` loads, and the checks at the end run. A lent GPU
//! runs the same script with the real sizes (scripts/gpu/README.md).

use std::path::Path;
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_patchscaler")
}

#[test]
fn the_gpu_procedure_runs_end_to_end_on_the_cpu_with_a_tiny_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("data");
    assert!(
        data.join("manifest.csv").is_file(),
        "run scripts/fetch_data.sh first"
    );
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("model");
    let o = Command::new(bin())
        .args(["init", "--preset", "tiny", "-o"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(o.status.success());
    let pack = d.path().join("pack");
    std::fs::create_dir(&pack).unwrap();
    std::os::unix::fs::symlink(&data, pack.join("data")).unwrap();
    let out = d.path().join("out");
    let sample = d.path().join("sample.png");
    image::RgbImage::from_fn(40, 32, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 7) as u8, ((x ^ y) * 5) as u8])
    })
    .save(&sample)
    .unwrap();
    let o = Command::new("bash")
        .arg(root.join("scripts/gpu/train.sh"))
        .env("OUT", &out)
        .env("GPU_DEVICE", "cpu")
        // Far above what the stages' limits add up to (the run takes about
        // 100 s on an idle machine): a loaded machine slows it down, and
        // must not make it skip the checks at the end.
        .env("GPU_BUDGET", "900")
        .env("GPU_RESERVE", "20")
        .env("GPU_PACK", &pack)
        .env("GPU_MODEL_FROM", &model)
        .env("PS_BIN", bin())
        .env("GPU_SCALE", "tiny")
        .env("GPU_BENCH_SIZE", "64")
        .env("GPU_SAMPLE", &sample)
        .envs([
            ("T_AE", "4"),
            ("T_GRM", "4"),
            ("T_TEXTURE", "3"),
            ("T_DIT", "4"),
        ])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(out.join("log.txt")).unwrap_or_default();
    assert!(
        o.status.success(),
        "{log}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        log.contains("end; stages: ae grm texture rtm dit calibrate"),
        "{log}"
    );
    assert!(out.join("model.tar.xz.aa").is_file() && out.join("runs.tar.xz").is_file());
    assert!(out.join("bench/bench.json").is_file(), "{log}");
    assert!(log.contains("bench --max-batch 512") && log.matches("bench.json").count() >= 2, "{log}");
    // The bundle laid out from this build, run with an empty environment:
    // on the CPU, the repository run's very bytes.
    assert!(
        log.contains("bundle (a), PATCHSCALER_CUDA_LIB, vs the repository run: max |diff| 0 levels"),
        "{log}"
    );
    // The ceiling needs Python's torch, which the light set-up cannot import.
    let torch_imports = Command::new(root.join(".venv/bin/python")).args(["-c", "import torch"]).output().is_ok_and(|o| o.status.success());
    if torch_imports {
        assert!(log.contains("ceiling (cpu, plain PyTorch") && log.contains("dit, 8 patches"), "{log}");
    } else {
        assert!(log.contains("ceiling: skipped, python3 cannot import torch here"), "{log}");
    }
    for run in ["ae", "grm", "texture", "dit"] {
        assert!(
            log.contains(&format!("{run}: done, published")),
            "{run}: {log}"
        );
    }

    let installed = d.path().join("installed");
    let o = Command::new("bash")
        .arg(root.join("scripts/gpu/unpack.sh"))
        .arg(&out)
        .arg(&installed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let up = d.path().join("up.png");
    let o = Command::new(bin())
        .arg("upscale")
        .arg("--model")
        .arg(&installed)
        .arg(root.join("assets/sample.png"))
        .arg("-o")
        .arg(&up)
        .output()
        .unwrap();
    assert!(
        o.status.success() && up.is_file(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
