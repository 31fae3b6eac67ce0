//! `scripts/slurm/upscale.sbatch` as a real SLURM array job: a one-node
//! cluster (Debian's slurm-wlm and munge; `scripts/setup.sh` installs them)
//! started on this machine, a 2-task array over a folder of small images,
//! then every image upscaled exactly once and the manifests together listing
//! each input once.

use patchscaler::model::{Model, ModelConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(c: &mut Command) -> String {
    let o = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{c:?}: {text}");
    text
}

/// Stops the cluster however the test ends.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(format!("{ROOT}/scripts/slurm/cluster.sh")).arg("stop").arg(&self.0).output();
    }
}

#[test]
fn a_two_task_array_job_upscales_every_image_once() {
    if std::env::var_os("PATCHSCALER_NO_SLURM").is_some() {
        eprintln!("PATCHSCALER_NO_SLURM is set: not starting a SLURM cluster");
        return;
    }
    assert!(
        Path::new("/usr/sbin/slurmctld").exists() && Path::new("/usr/sbin/munged").exists(),
        "slurm-wlm and munge are not installed: run scripts/setup.sh as root (or set PATCHSCALER_NO_SLURM=1 where no scheduler can run)"
    );
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("cluster");
    let cluster = Cluster(state.clone());
    run(Command::new(format!("{ROOT}/scripts/slurm/cluster.sh")).arg("start").arg(&cluster.0));
    let conf = state.join("slurm.conf");

    let mut m = Model::init(ModelConfig::tiny(), tch::Device::Cpu, 0).unwrap();
    m.perturb_zero_dit(0.05, 0);
    let model = d.path().join("model");
    m.save(&model, false).unwrap();
    let inputs = d.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    let names = ["a", "b", "c", "d", "e"];
    for (i, n) in names.iter().enumerate() {
        image::RgbImage::from_fn(12 + i as u32, 10, |x, y| image::Rgb([(x * 20) as u8, (y * 25) as u8, (i * 40) as u8]))
            .save(inputs.join(format!("{n}.png")))
            .unwrap();
    }
    let out = d.path().join("out");
    let submitted = run(Command::new("sbatch")
        .env("SLURM_CONF", &conf)
        .env("PATCHSCALER", env!("CARGO_BIN_EXE_patchscaler"))
        .current_dir(ROOT)
        .args(["--parsable", "--wait", "--array=0-1", "--cpus-per-task=1", "-o"])
        .arg(d.path().join("slurm-%A_%a.out"))
        .arg("scripts/slurm/upscale.sbatch")
        .arg(&inputs)
        .arg(&out)
        .arg("--model")
        .arg(&model));
    let job = submitted.lines().next().unwrap_or("").trim().to_string();
    let logs = || {
        std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // --wait returns when the array is done; make sure the queue agrees.
    let start = Instant::now();
    while !run(Command::new("squeue").env("SLURM_CONF", &conf).args(["-h", "-j", &job])).trim().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(120), "job {job} still queued: {}", logs());
        std::thread::sleep(Duration::from_millis(500));
    }

    for n in names {
        let o = out.join(format!("{n}_x4.png"));
        assert!(o.is_file(), "{} missing; job logs:\n{}", o.display(), logs());
    }
    let mut listed: Vec<String> = Vec::new();
    for task in 0..2 {
        let manifest = out.join(format!("manifest-{task}-of-2.jsonl"));
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}\n{}", manifest.display(), logs()));
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], "done", "{line}");
            listed.push(v["input"].as_str().unwrap().to_string());
        }
    }
    listed.sort();
    let want: Vec<String> = names.iter().map(|n| inputs.join(format!("{n}.png")).display().to_string()).collect();
    assert_eq!(listed, want, "each input once across the manifests");
    let outputs = std::fs::read_dir(&out).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png")).count();
    assert_eq!(outputs, names.len());
}
