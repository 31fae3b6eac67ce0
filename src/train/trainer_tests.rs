use super::*;
use crate::train::checkpoint::STATE_FILE;
use crate::train::log::read_log;
use rand::Rng;
use std::time::Duration;
use tch::{nn, Device, Kind};

/// Linear regression y = <x, (1, -2, 3, 0.5)> on noise drawn from the
/// trainer's RNG. Weights start at zero: the test must not touch libtorch's
/// global RNG, which other tests share.
fn train(out_dir: &Path, max_steps: u64, delay: Duration) -> VarStore {
    let mut vs = VarStore::new(Device::Cpu);
    let w = (vs.root() / "fc").var("weight", &[4, 1], nn::Init::Const(0.0));
    let truth = Tensor::from_slice(&[1.0f32, -2.0, 3.0, 0.5]).view([4, 1]);
    let options = TrainOptions {
        log_every: 2,
        val_every: 5,
        ckpt_every: 3,
        lr: 0.05,
        warmup: 3,
        clip: Some(2.0),
        ema: Some(0.9),
        samples_per_step: 8,
        progress_bar: false,
        ..TrainOptions::new(out_dir, max_steps)
    };
    let mut trainer = Trainer::new(options, &"toy").unwrap();
    let step = |_: u64, rng: &mut ChaCha8Rng| {
        std::thread::sleep(delay);
        let x: Vec<f32> = (0..32).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Tensor::from_slice(&x).view([8, 4]);
        let loss = (x.matmul(&w) - x.matmul(&truth)).square().mean(Kind::Float);
        let values = vec![("mse".to_string(), loss.shallow_clone())];
        Ok(Step { loss, values, data_wait: 0.0 })
    };
    let val = |_: u64, emas: &[Ema]| {
        let ema_w = &emas[0].shadow().variables()["fc.weight"];
        Ok(vec![(
            "ema_error".to_string(),
            (ema_w - &truth).abs().sum(Kind::Float).double_value(&[]),
        )])
    };
    trainer.run(&mut [("toy", &mut vs)], step, val).unwrap();
    vs
}

fn weights(vs: &VarStore) -> Tensor {
    vs.variables()["fc.weight"].shallow_clone()
}

fn checkpoint_tensors(out_dir: &Path, file: &str) -> Vec<(String, Tensor)> {
    let mut t = Tensor::read_safetensors(out_dir.join("checkpoint").join(file)).unwrap();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

fn assert_same_run(a: &Path, b: &Path, steps: u64) {
    for file in [
        "toy.safetensors",
        "ema-toy.safetensors",
        "optimizer.safetensors",
    ] {
        let (x, y) = (checkpoint_tensors(a, file), checkpoint_tensors(b, file));
        assert_eq!(x.len(), y.len());
        for ((n, s), (_, t)) in x.iter().zip(&y) {
            assert!(s.equal(t), "{file}: {n} differs");
        }
    }
    let values = |dir: &Path| -> Vec<(u64, String, String, f64)> {
        read_log(&dir.join("log.csv"))
            .unwrap()
            .into_iter()
            .map(|r| (r.step, r.split, r.name, r.value))
            .collect()
    };
    assert_eq!(values(a), values(b), "same log rows, none duplicated");
    let state: TrainState =
        serde_json::from_slice(&std::fs::read(b.join("checkpoint").join(STATE_FILE)).unwrap())
            .unwrap();
    assert_eq!(state.step, steps);
}

#[test]
fn resumed_run_matches_straight_run_bit_for_bit() {
    let (straight, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = train(straight.path(), 10, Duration::ZERO);
    let first = train(split.path(), 6, Duration::ZERO);
    assert!(
        !weights(&first).equal(&weights(&full)),
        "the first half did not finish the job"
    );
    let resumed = train(split.path(), 10, Duration::ZERO);
    assert!(
        weights(&resumed).equal(&weights(&full)),
        "weights differ after resume"
    );
    assert_same_run(straight.path(), split.path(), 10);

    let log = read_log(&split.path().join("log.csv")).unwrap();
    let val: Vec<(u64, f64)> = log
        .iter()
        .filter(|r| r.split == "val")
        .map(|r| (r.step, r.value))
        .collect();
    assert_eq!(
        val.iter().map(|v| v.0).collect::<Vec<_>>(),
        [5, 10],
        "validated every 5 steps"
    );
    assert!(
        val[1].1 < val[0].1,
        "the EMA weights approach the truth: {val:?}"
    );
    let png = image::open(split.path().join("loss.png")).unwrap();
    assert!(png.width() > 100);
}

#[test]
fn another_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), 3, Duration::ZERO);
    let err = Trainer::new(
        TrainOptions {
            lr: 0.5,
            ..TrainOptions::new(dir.path(), 6)
        },
        &"toy",
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("another config"), "{err}");
}

const KILL_DIR: &str = "PATCHSCALER_TRAIN_KILL_TEST_DIR";

/// The victim of `killed_run_resumes_cleanly`, started as a child process.
#[test]
#[ignore]
fn child_run_for_the_kill_test() {
    if let Some(dir) = std::env::var_os(KILL_DIR) {
        train(Path::new(&dir), 100_000, Duration::from_millis(5));
    }
}

#[test]
fn killed_run_resumes_cleanly() {
    let (victim, reference) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "train::trainer::tests::child_run_for_the_kill_test",
            "--exact",
            "--ignored",
            "--test-threads=1",
        ])
        .env(KILL_DIR, victim.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Read state.json directly: `Checkpoint::latest` would delete the
    // child's unfinished folder under it.
    let live_step = || -> Option<u64> {
        let text = std::fs::read(victim.path().join("checkpoint").join(STATE_FILE)).ok()?;
        serde_json::from_slice::<TrainState>(&text)
            .ok()
            .map(|s| s.step)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while live_step().unwrap_or(0) < 30 {
        assert!(Instant::now() < deadline, "child made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(13)); // land somewhere mid-step
    child.kill().unwrap();
    child.wait().unwrap();

    let (_, state) = Checkpoint::in_dir(victim.path())
        .latest()
        .unwrap()
        .expect("a complete checkpoint survives");
    let target = state.step + 4;
    train(victim.path(), target, Duration::ZERO);
    train(reference.path(), target, Duration::ZERO);
    assert_same_run(reference.path(), victim.path(), target);
}

/// A bf16 training run on CUDA: the step's matmul is bf16 under the loop's
/// autocast, the float32 weights move, the time limit ends the run early
/// with a checkpoint. Run on a GPU machine: `--ignored cuda`.
#[test]
#[ignore = "needs a CUDA device"]
fn cuda_bf16_training_steps_update_float32_weights_and_stop_at_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Device::Cuda(0);
    let mut vs = VarStore::new(dev);
    let w = (vs.root() / "fc").var(
        "weight",
        &[64, 64],
        nn::Init::Randn {
            mean: 0.0,
            stdev: 0.1,
        },
    );
    let before = w.detach().copy();
    let options = TrainOptions {
        precision: Precision::Bf16,
        device: dev,
        time_limit: Some(0.5),
        log_every: 1,
        val_every: 0,
        ckpt_every: 1_000_000,
        progress_bar: false,
        ..TrainOptions::new(dir.path(), 1_000_000)
    };
    let mut trainer = Trainer::new(options, &"cuda").unwrap();
    let mut kinds = Vec::new();
    let step = |_: u64, _: &mut ChaCha8Rng| {
        let x = Tensor::randn([32, 64], (Kind::Float, dev));
        let y = x.matmul(&w);
        kinds.push(y.kind());
        let loss = y.to_kind(Kind::Float).square().mean(Kind::Float);
        Ok(Step {
            values: vec![("loss".into(), loss.shallow_clone())],
            loss,
            data_wait: 0.0,
        })
    };
    trainer
        .run(&mut [("toy", &mut vs)], step, |_, _| Ok(vec![]))
        .unwrap();
    assert!(kinds.iter().all(|k| *k == Kind::BFloat16), "{kinds:?}");
    assert!(
        trainer.steps_done > 1 && trainer.steps_done < 1_000_000,
        "steps {}",
        trainer.steps_done
    );
    assert_eq!(w.kind(), Kind::Float);
    assert!((w.detach() - before).abs().max().double_value(&[]) > 0.0);
    assert!(
        Checkpoint::in_dir(dir.path()).latest().unwrap().is_some(),
        "the time limit must checkpoint"
    );
}

/// The loop reads losses back only when it logs, validates or saves; a NaN
/// in between must still stop the run before anything of it is saved.
#[test]
fn a_non_finite_loss_stops_the_run_before_it_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut vs = VarStore::new(Device::Cpu);
    let w = (vs.root() / "fc").var("weight", &[3], nn::Init::Const(1.0));
    let options = TrainOptions {
        log_every: 5,
        val_every: 0,
        ckpt_every: 5,
        warmup: 0,
        progress_bar: false,
        ..TrainOptions::new(dir.path(), 20)
    };
    let mut trainer = Trainer::new(options, &"nan").unwrap();
    let step = |step: u64, _: &mut ChaCha8Rng| {
        let scale = if step == 2 { f64::NAN } else { 1.0 };
        let loss = (&w * scale).square().sum(Kind::Float);
        Ok(Step { values: vec![("loss".into(), loss.shallow_clone())], loss, data_wait: 0.0 })
    };
    let err = trainer.run(&mut [("toy", &mut vs)], step, |_, _| Ok(vec![])).unwrap_err();
    assert!(format!("{err:#}").contains("not finite"), "{err:#}");
    assert!(Checkpoint::in_dir(dir.path()).latest().unwrap().is_none(), "nothing saved");
}
