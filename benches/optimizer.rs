//! The optimizer side of one training step (gradient clip, AdamW, EMA) over
//! the shipped Patch-DiT's parameter tensors, one tensor at a time (the rule
//! as the trainers ran it up to commit 847c1f9, the clip reading its norm back
//! to the host) against libtorch's multi-tensor kernels (what they run now).
//!
//! `cargo bench --bench optimizer`; `PATCHSCALER_BENCH_DEVICE=cuda` runs it on
//! the GPU, where the launch count, not the arithmetic, sets the time.

use criterion::{criterion_group, criterion_main, Criterion};
use patchscaler::train::multi_tensor::foreach_lerp_;
use patchscaler::train::optim::adamw_per_tensor;
use patchscaler::train::{clip_divisor, AdamW, AdamWConfig};
use tch::{Device, Kind, Tensor};

const WEIGHTS: &str = "models/default/dit.safetensors";
const MAX_NORM: f64 = 1.0;
const LR: f64 = 1e-4;
const EMA_WEIGHT: f64 = 1e-3;

fn device() -> Device {
    match std::env::var("PATCHSCALER_BENCH_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    }
}

/// Parameters shaped as the shipped Patch-DiT's, each with a gradient.
fn parameters(device: Device) -> Vec<Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(WEIGHTS);
    let weights = Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    weights
        .into_iter()
        .map(|(_, w)| {
            let p = w.to_kind(Kind::Float).to_device(device).set_requires_grad(true);
            (&p * Tensor::randn_like(&p)).sum(Kind::Float).backward();
            p
        })
        .collect()
}

fn update(c: &mut Criterion) {
    let device = device();
    let params = parameters(device);
    let numel: i64 = params.iter().map(|p| p.numel() as i64).sum();
    let shadows: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let mut group = c.benchmark_group(format!("clip + AdamW + EMA, {} tensors, {numel} weights, {device:?}", params.len()));

    let config = AdamWConfig::default();
    let moments: Vec<(Tensor, Tensor)> = params.iter().map(|p| (p.zeros_like(), p.zeros_like())).collect();
    group.bench_function("one tensor at a time", |b| {
        b.iter(|| {
            let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).collect();
            let squares: Vec<Tensor> = grads.iter().map(|g| g.to_kind(Kind::Double).square().sum(Kind::Double)).collect();
            let norm = Tensor::stack(&squares, 0).sum(Kind::Double).sqrt().double_value(&[]);
            let coef = MAX_NORM / (norm + 1e-6);
            tch::no_grad(|| {
                if coef < 1.0 {
                    for g in &grads {
                        let _ = g.shallow_clone().g_mul_scalar_(coef);
                    }
                }
                for ((p, g), (m, v)) in params.iter().zip(&grads).zip(&moments) {
                    adamw_per_tensor(p, m, v, g, 10, LR, &config);
                }
                for (s, p) in shadows.iter().zip(&params) {
                    let _ = s.shallow_clone().lerp_(p, EMA_WEIGHT);
                }
            });
            patchscaler::device::synchronize(device);
        })
    });

    let named = params.iter().enumerate().map(|(i, p)| (format!("p{i}"), p.shallow_clone())).collect();
    let mut fused = AdamW::new(named, config);
    let (shadow, live): (Vec<&Tensor>, Vec<&Tensor>) = shadows.iter().zip(&params).unzip();
    group.bench_function("multi-tensor kernels", |b| {
        b.iter(|| {
            let (_, divisor) = clip_divisor(&params, MAX_NORM).unwrap().unwrap();
            fused.step(LR, Some(&divisor)).unwrap();
            tch::no_grad(|| foreach_lerp_(&shadow, &live, EMA_WEIGHT)).unwrap();
            patchscaler::device::synchronize(device);
        })
    });
    group.finish();
}

criterion_group!(benches, update);
criterion_main!(benches);
