//! Behaviour of the whole pipeline on the tiny preset (random weights).

use super::*;
use crate::colorfix::ColorFix;
use crate::model::{Model, ModelConfig};
use crate::pgs::groups::PgsConfig;
use tch::Device;

fn model() -> Model {
    Model::init(ModelConfig::tiny(), Device::Cpu, 3).unwrap()
}

fn image(h: i64, w: i64) -> Tensor {
    tch::manual_seed(11);
    Tensor::rand([1, 3, h, w], (Kind::Float, Device::Cpu))
}

#[test]
fn output_is_x4_in_range_for_odd_and_tiny_sizes() {
    let m = model();
    let opts = SamplingOptions::new(PgsConfig::paper(), ColorFix::Wavelet);
    for (h, w) in [(13, 9), (3, 5), (20, 28)] {
        let up = upscale(&m, &image(h, w), &opts).unwrap();
        assert_eq!(up.sr.size(), vec![1, 3, 4 * h, 4 * w]);
        let (lo, hi) = (up.sr.min().double_value(&[]), up.sr.max().double_value(&[]));
        assert!((0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi), "{lo} {hi}");
        assert_eq!(up.assignment.len(), up.grid.positions.len());
        let total: usize = up.stats.patches_per_group.iter().sum();
        assert_eq!(total, up.assignment.len());
    }
}

/// The untrained GRM's confidence is 0.5 everywhere, below g2 = 0.75, so PGS
/// puts every patch in the hard group: it must then equal `--uniform`.
#[test]
fn all_hard_pgs_equals_uniform_bit_for_bit() {
    let m = model();
    let lr = image(16, 20);
    let pgs = upscale(&m, &lr, &SamplingOptions::new(PgsConfig::paper(), ColorFix::Wavelet)).unwrap();
    assert!(pgs.assignment.iter().all(|&g| g == 2), "{:?}", pgs.assignment);
    let uni = upscale(&m, &lr, &SamplingOptions::new(PgsConfig::uniform(), ColorFix::Wavelet)).unwrap();
    assert!(pgs.sr.equal(&uni.sr));
    assert_eq!(pgs.stats.evaluations, uni.stats.evaluations);
    assert_eq!(pgs.stats.evaluations, pgs.stats.uniform_evaluations);
}

#[test]
fn seed_decides_the_noise_and_batching_does_not() {
    let m = model();
    let lr = image(16, 16);
    let mut opts = SamplingOptions::new(PgsConfig::paper(), ColorFix::None);
    opts.seed = 5;
    let a = upscale(&m, &lr, &opts).unwrap().sr;
    opts.max_batch = 1;
    let b = upscale(&m, &lr, &opts).unwrap().sr;
    assert!(a.equal(&b), "batch size changed the result");
    opts.seed = 6;
    let c = upscale(&m, &lr, &opts).unwrap().sr;
    assert!(!a.equal(&c), "a different seed gave the same image");
}

#[test]
fn bf16_runs_and_stays_close_to_f32() {
    let mut m = model();
    let lr = image(12, 12);
    let opts = SamplingOptions::new(PgsConfig::paper(), ColorFix::Wavelet);
    let f32_out = upscale(&m, &lr, &opts).unwrap().sr;
    m.set_kind(Kind::BFloat16);
    let bf = upscale(&m, &lr, &opts).unwrap().sr;
    assert_eq!(bf.kind(), Kind::Float);
    let diff = (&bf - &f32_out).abs().mean(Kind::Float).double_value(&[]);
    assert!(diff < 0.05, "mean |bf16 - f32| = {diff}");
}

#[test]
fn other_scales_resample_the_native_result() {
    let m = model();
    let lr = image(10, 8);
    let up = upscale(&m, &lr, &SamplingOptions::new(PgsConfig::paper(), ColorFix::Wavelet)).unwrap();
    assert_eq!(rescale(&up.sr, 10, 8, 2.0).unwrap().size(), vec![1, 3, 20, 16]);
    assert_eq!(rescale(&up.sr, 10, 8, 6.0).unwrap().size(), vec![1, 3, 60, 48]);
    assert!(rescale(&up.sr, 10, 8, 4.0).unwrap().equal(&up.sr));
}
