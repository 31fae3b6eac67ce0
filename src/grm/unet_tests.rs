use super::*;
use crate::grm::ConfidenceLoss;
use tch::nn::OptimizerConfig;
use tch::{Device, Kind};

fn tiny() -> (nn::VarStore, Grm) {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let grm = Grm::new(&vs.root(), &GrmConfig::tiny()).unwrap();
    (vs, grm)
}

#[test]
fn weights_are_named_by_module_path() {
    let (vs, _) = tiny();
    let names = vs.variables();
    for key in [
        "conv_in.weight",
        "down.0.res.0.conv1.weight",
        "down.0.downsample.weight",
        "down.1.res.0.skip.weight",
        "mid.1.norm2.weight",
        "up.0.upsample.weight",
        "up.0.res.0.skip.weight",
        "up.1.res.0.conv2.bias",
        "out_head.norm.weight",
        "out_head.conv.weight",
        "conf_head.conv1.weight",
        "conf_head.conv2.bias",
    ] {
        assert!(names.contains_key(key), "missing {key}; have {:?}", names.keys());
    }
    // The deepest level neither downsamples nor upsamples.
    assert!(!names.contains_key("down.1.downsample.weight"));
    assert!(!names.contains_key("up.1.upsample.weight"));
}

#[test]
fn shipped_cpu_preset_has_the_documented_size() {
    let vs = nn::VarStore::new(Device::Cpu);
    Grm::new(&vs.root(), &GrmConfig::cpu()).unwrap();
    let params: i64 = vs.trainable_variables().iter().map(|t| t.numel() as i64).sum();
    assert_eq!(params, 2_710_917, "update the doc comment of GrmConfig::cpu");
}

#[test]
fn shapes_and_ranges_for_odd_sizes() {
    let (_vs, grm) = tiny();
    for (h, w) in [(16, 16), (13, 7), (1, 5)] {
        let y_lr = Tensor::randn([2, 4, h, w], (Kind::Float, Device::Cpu));
        let (y_hr, conf) = tch::no_grad(|| grm.forward(&y_lr)).unwrap();
        assert_eq!(y_hr.size(), [2, 4, h, w]);
        assert_eq!(conf.size(), [2, 1, h, w]);
        let (lo, hi) = (conf.min().double_value(&[]), conf.max().double_value(&[]));
        assert!(lo >= 0.0 && hi <= 1.0, "C must lie in [0, 1]: [{lo}, {hi}]");
        assert_eq!(y_hr.isfinite().all().int64_value(&[]), 1);
    }
}

#[test]
fn untrained_grm_is_the_identity_with_confidence_one_half() {
    // Both heads end in a zero conv: training starts from y_HR = y_LR, C = 1/2.
    let (_vs, grm) = tiny();
    let y_lr = Tensor::randn([1, 4, 12, 10], (Kind::Float, Device::Cpu));
    let (y_hr, conf) = tch::no_grad(|| grm.forward(&y_lr)).unwrap();
    assert_eq!(crate::conformance::max_abs_diff(&y_hr, &y_lr), 0.0);
    assert_eq!(crate::conformance::max_abs_diff(&conf, &conf.full_like(0.5)), 0.0);
}

#[test]
fn wrong_channel_count_is_an_error() {
    let (_vs, grm) = tiny();
    let err = grm.forward(&Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu))).unwrap_err();
    assert!(err.to_string().contains("(B, 4, H, W)"), "{err}");
}

#[test]
fn training_steps_on_a_toy_pair_reduce_the_loss() {
    let (vs, grm) = tiny();
    let x_hr = Tensor::randn([2, 4, 16, 16], (Kind::Float, Device::Cpu));
    // A "degraded" latent: the truth, smoothed and with an offset.
    let y_lr = x_hr.avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None::<i64>) + 0.3;
    let loss_fn = ConfidenceLoss::paper();
    let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    let mut losses = Vec::new();
    for _ in 0..5 {
        let (y_hr, logit) = grm.forward_with_logit(&y_lr).unwrap();
        let loss = loss_fn.compute(&y_hr, &logit, &x_hr).unwrap();
        losses.push(loss.double_value(&[]));
        opt.backward_step(&loss);
    }
    assert!(losses[4] < losses[0] - 1e-3, "loss did not drop: {losses:?}");
}
