//! The generic training loop every part's trainer runs.
//!
//! A part trainer supplies the step (forward, loss, `backward`) and the
//! validation; the loop owns everything that must be the same for all of
//! them: AdamW with warm-up, clipping, EMA, the progress bar, the CSV log
//! and plot, periodic validation, and checkpoints that resume exactly.
//!
//! Exact resume: the weights, AdamW moments, EMA and the trainer's ChaCha RNG
//! position are restored, and libtorch's global RNG is reseeded from
//! (seed, step) before every step, so a step draws the same noise whether or
//! not the run was interrupted before it. A data loader continues with
//! `skip_to(trainer.start_step())`: one batch per step. The log records the
//! values of the logging step itself, not a mean over the interval, so a
//! resumed run writes exactly the rows the uninterrupted one would.

use super::checkpoint::{Checkpoint, RngState, TrainState};
use super::ema::Ema;
use super::log::{CsvLog, LogRow};
use super::optim::{clip_divisor, AdamW, AdamWConfig, LrSchedule};
use super::plot::plot_losses;
use crate::autocast::autocast;
pub use crate::autocast::Precision;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::VarStore;
use tch::Tensor;

/// Named values a step or a validation returns, e.g. `[("l1", 0.1)]`.
pub type Losses = Vec<(String, f64)>;

/// One training step's result: the loss to differentiate and the named
/// values to log (the loss among them, first for the progress bar). The loop,
/// not the step, calls `backward`, outside autocast, as PyTorch recommends.
/// The values stay tensors: the loop reads them back (which waits for the
/// device) only on the steps it logs, so a GPU never idles between steps.
pub struct Step {
    pub loss: Tensor,
    pub values: Vec<(String, Tensor)>,
    /// Seconds the step waited for its data (`timed`): the loop logs the
    /// share of step time spent waiting as `data_wait`.
    pub data_wait: f64,
}

/// Times a data fetch for `Step::data_wait`.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub out_dir: PathBuf,
    pub max_steps: u64,
    pub log_every: u64,
    /// 0: no validation.
    pub val_every: u64,
    pub ckpt_every: u64,
    pub lr: f64,
    pub warmup: u64,
    /// Maximum joint gradient norm.
    pub clip: Option<f64>,
    /// EMA decay.
    pub ema: Option<f64>,
    pub seed: u64,
    pub precision: Precision,
    /// Where the step runs (chooses the autocast flavour).
    #[serde(skip, default = "cpu")]
    pub device: tch::Device,
    /// Seconds of training after which the step reached counts as the last.
    pub time_limit: Option<f64>,
    /// Samples in one step's batch, for the throughput figure.
    pub samples_per_step: usize,
    pub adamw: AdamWConfig,
    pub progress_bar: bool,
}

impl TrainOptions {
    /// Sensible defaults for a run of `max_steps` into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>, max_steps: u64) -> Self {
        TrainOptions {
            out_dir: out_dir.into(),
            max_steps,
            log_every: 10,
            val_every: 500,
            ckpt_every: 500,
            lr: 1e-4,
            warmup: 500,
            clip: Some(1.0),
            ema: None,
            seed: 0,
            precision: Precision::F32,
            device: tch::Device::Cpu,
            time_limit: None,
            samples_per_step: 1,
            adamw: AdamWConfig::default(),
            progress_bar: true,
        }
    }

    /// What a resumed run must share with the run it continues. Not the
    /// length, the output folder or the reporting cadence: extending a run
    /// or logging more often is fine.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!([
            self.lr,
            self.warmup,
            self.clip,
            self.ema,
            self.seed,
            self.adamw,
            self.samples_per_step
        ])
    }
}

pub struct Trainer {
    pub options: TrainOptions,
    config_hash: String,
    resume_from: Option<(PathBuf, TrainState)>,
    /// Steps done when `run` returned (the time limit may end a run early).
    pub steps_done: u64,
}

impl Trainer {
    /// Prepares a run; if `out_dir` holds a checkpoint the run continues
    /// from it. `part_config` (the model and data config) is hashed with the
    /// options so that a checkpoint is never resumed under another config.
    pub fn new(options: TrainOptions, part_config: &impl Serialize) -> Result<Self> {
        std::fs::create_dir_all(&options.out_dir)
            .with_context(|| format!("creating {}", options.out_dir.display()))?;
        let identity = serde_json::to_string(&(options.identity(), part_config))?;
        let config_hash = format!("{:016x}", fnv1a(identity.as_bytes()));
        let resume_from = Checkpoint::in_dir(&options.out_dir).latest()?;
        if let Some((dir, state)) = &resume_from {
            if state.config_hash != config_hash {
                bail!("{}: checkpoint was made with another config (hash {} != {config_hash}); use a new out_dir", dir.display(), state.config_hash);
            }
        }
        let steps_done = resume_from.as_ref().map_or(0, |(_, s)| s.step);
        Ok(Trainer {
            options,
            config_hash,
            resume_from,
            steps_done,
        })
    }

    /// Steps already done: 0 for a fresh run.
    pub fn start_step(&self) -> u64 {
        self.resume_from.as_ref().map_or(0, |(_, s)| s.step)
    }

    pub fn log_path(&self) -> PathBuf {
        self.options.out_dir.join("log.csv")
    }

    pub fn plot_path(&self) -> PathBuf {
        self.options.out_dir.join("loss.png")
    }

    /// Trains `parts` (named VarStores) up to `max_steps`. `step_fn(step,
    /// rng)` runs the forward pass and returns the loss; the first logged
    /// value is the one shown on the progress bar. `val_fn(step, emas)` validates on the
    /// held-out split, with the EMA averages (one per part) when enabled.
    pub fn run(
        &mut self,
        parts: &mut [(&str, &mut VarStore)],
        mut step_fn: impl FnMut(u64, &mut ChaCha8Rng) -> Result<Step>,
        mut val_fn: impl FnMut(u64, &[Ema]) -> Result<Losses>,
    ) -> Result<()> {
        let o = self.options.clone();
        let mut params = Vec::new();
        for (part, vs) in parts.iter() {
            let trainable = vs
                .variables()
                .into_iter()
                .filter(|(_, t)| t.requires_grad());
            params.extend(trainable.map(|(name, t)| (format!("{part}/{name}"), t)));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
        let mut optimizer = AdamW::new(params, o.adamw.clone());
        let mut emas: Vec<Ema> = o.ema.map_or(Vec::new(), |d| {
            parts.iter().map(|(_, vs)| Ema::new(vs, d)).collect()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
        let mut elapsed_before = 0.0;
        if let Some((dir, state)) = &self.resume_from {
            for (part, vs) in parts.iter_mut() {
                let path = dir.join(format!("{part}.safetensors"));
                vs.load(&path)
                    .with_context(|| format!("resuming {}", path.display()))?;
            }
            optimizer.load(&dir.join("optimizer.safetensors"))?;
            for (ema, (part, _)) in emas.iter_mut().zip(parts.iter()) {
                ema.load(&dir.join(format!("ema-{part}.safetensors")))?;
            }
            rng = state.rng.restore()?;
            elapsed_before = state.elapsed_s;
            tracing::info!("resuming {} at step {}", o.out_dir.display(), state.step);
        }
        let start = self.start_step();
        let mut log = CsvLog::open(&self.log_path(), start)?;
        let bar = progress_bar(&o, start);
        let session = Instant::now();
        let elapsed = || elapsed_before + session.elapsed().as_secs_f64();
        let schedule = LrSchedule {
            lr: o.lr,
            warmup: o.warmup,
        };
        let (mut window_steps, mut window_start, mut window_wait) = (0u64, Instant::now(), 0.0);
        let mut last = o.max_steps;
        // All losses finite since step `checked` (a device flag, read only
        // when the loop logs, validates or saves).
        let mut finite = Tensor::ones([], (tch::Kind::Bool, o.device));
        let mut checked = start;

        for step in start..o.max_steps {
            optimizer.zero_grad()?;
            tch::manual_seed(step_seed(o.seed, step));
            let bf16 = o.precision == Precision::Bf16;
            let Step { loss, values, data_wait } = autocast(o.device, bf16, || step_fn(step, &mut rng))
                .with_context(|| format!("training step {step}"))?;
            loss.backward();
            if values.is_empty() {
                bail!("training step {step}: the step returned no losses");
            }
            let mut values: Vec<(String, Tensor)> =
                values.into_iter().map(|(n, v)| (n, v.detach())).collect();
            finite = finite.logical_and(&loss.detach().isfinite());
            window_wait += data_wait;
            let mut divisor = None;
            if let Some(max) = o.clip {
                if let Some((norm, d)) = clip_divisor(&tensors, max)? {
                    values.push(("grad_norm".into(), norm));
                    divisor = Some(d);
                }
            }
            let lr = schedule.at(step);
            optimizer.step(lr, divisor.as_ref())?;
            for ema in emas.iter_mut() {
                ema.update(step)?;
            }
            window_steps += 1;
            let done = step + 1;
            bar.set_position(done);
            if o.time_limit
                .is_some_and(|limit| session.elapsed().as_secs_f64() >= limit)
            {
                tracing::info!("time limit reached at step {done}");
                last = done;
            }

            let cut_short = done == last && last < o.max_steps;
            let validating = o.val_every > 0 && (done % o.val_every == 0 || cut_short);
            let saving = done % o.ckpt_every.max(1) == 0 || done == last;
            let logging = done % o.log_every.max(1) == 0 || done == last;
            if logging || validating || saving {
                // A non-finite loss since the last check stops the run before
                // anything is logged or saved from it.
                if finite.int64_value(&[]) == 0 {
                    bail!("training step {done}: the loss was not finite at some step after step {checked}");
                }
                checked = done;
            }
            if logging {
                let mut values: Vec<(String, f64)> =
                    values.iter().map(|(n, v)| (n.clone(), v.double_value(&[]))).collect();
                if let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
                    bail!("training step {done}: {name} is {v}");
                }
                crate::device::synchronize(o.device);
                let seconds = window_start.elapsed().as_secs_f64();
                let rate = (window_steps as usize * o.samples_per_step) as f64 / seconds;
                values.push(("data_wait".into(), window_wait / seconds));
                log.append(&rows(done, "train", &values, lr, rate, elapsed()))?;
                bar.set_message(format!(
                    "{} {:.4} | {rate:.1} samples/s",
                    values[0].0, values[0].1
                ));
                (window_steps, window_start, window_wait) = (0, Instant::now(), 0.0);
            }
            if validating {
                let val = tch::no_grad(|| val_fn(done, &emas))
                    .with_context(|| format!("validation at step {done}"))?;
                log.append(&rows(done, "val", &val, lr, 0.0, elapsed()))?;
            }
            if saving {
                let state = TrainState {
                    step: done,
                    rng: RngState::capture(&rng),
                    data_position: done,
                    config_hash: self.config_hash.clone(),
                    elapsed_s: elapsed(),
                };
                save(&o.out_dir, &state, parts, &optimizer, &emas)?;
                self.resume_from = Some((
                    Checkpoint::in_dir(&o.out_dir)
                        .latest()?
                        .context("checkpoint just written")?
                        .0,
                    state,
                ));
            }
            if done == last {
                break;
            }
        }
        self.steps_done = self.start_step();
        bar.finish();
        if std::fs::metadata(self.log_path()).is_ok_and(|m| m.len() > 0) && self.steps_done > start
        {
            plot_losses(&self.log_path(), &self.plot_path())?;
        }
        Ok(())
    }
}

fn save(
    out_dir: &Path,
    state: &TrainState,
    parts: &[(&str, &mut VarStore)],
    optimizer: &AdamW,
    emas: &[Ema],
) -> Result<()> {
    Checkpoint::in_dir(out_dir).save(state, |dir| {
        for (part, vs) in parts {
            let path = dir.join(format!("{part}.safetensors"));
            vs.save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        optimizer.save(&dir.join("optimizer.safetensors"))?;
        for (ema, (part, _)) in emas.iter().zip(parts) {
            ema.save(&dir.join(format!("ema-{part}.safetensors")))?;
        }
        Ok(())
    })
}

fn progress_bar(o: &TrainOptions, start: u64) -> ProgressBar {
    let target = if o.progress_bar {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(o.max_steps), target);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_position(start);
    bar
}

fn rows(
    step: u64,
    split: &str,
    values: &[(String, f64)],
    lr: f64,
    samples_per_s: f64,
    elapsed_s: f64,
) -> Vec<LogRow> {
    values
        .iter()
        .map(|(name, value)| LogRow {
            step,
            split: split.into(),
            name: name.clone(),
            value: *value,
            lr,
            samples_per_s,
            elapsed_s,
        })
        .collect()
}

fn cpu() -> tch::Device {
    tch::Device::Cpu
}

/// libtorch's seed for one step: a function of (seed, step) only.
fn step_seed(seed: u64, step: u64) -> i64 {
    (fnv1a(&[seed.to_le_bytes(), step.to_le_bytes()].concat()) >> 1) as i64
}

/// FNV-1a: a hash that, unlike std's, is stable across Rust versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
#[path = "trainer_tests.rs"]
mod tests;
