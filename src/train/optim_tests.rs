use super::*;
use tch::nn::{self, Module};

fn toy() -> (Tensor, Tensor, AdamW) {
    let a = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
    let b = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
    let config = AdamWConfig { weight_decay: 0.05, ..Default::default() };
    let opt = AdamW::new(vec![("a".into(), a.shallow_clone()), ("b".into(), b.shallow_clone())], config);
    (a, b, opt)
}

/// loss_i = <a, c> + (i+1) |b|^2 + i |a|^2 with c = (0.5, 3).
fn toy_step(i: i64, a: &Tensor, b: &Tensor, opt: &mut AdamW) {
    opt.zero_grad().unwrap();
    let c = Tensor::from_slice(&[0.5f32, 3.0]);
    let loss = (a * c).sum(Kind::Float) + b.square().sum(Kind::Float) * (i + 1) + a.square().sum(Kind::Float) * i;
    loss.backward();
    opt.step(0.1, None).unwrap();
}

fn assert_close(t: &Tensor, want: &[f64], tol: f64) {
    let got: Vec<f64> = Vec::<f32>::try_from(t).unwrap().into_iter().map(f64::from).collect();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "got {got:?}, want {want:?}");
    }
}

#[test]
fn matches_hand_computed_adamw_steps() {
    let (a, b, mut opt) = toy();
    // Step 1, bias-corrected moments are g and g^2, so the update is
    // p (1 - lr wd) - lr g / (|g| + eps): 1 * 0.995 - 0.1 = 0.895, etc.
    toy_step(0, &a, &b, &mut opt);
    assert_close(&a, &[0.895, -2.09], 1e-6);
    assert_close(&b, &[0.3975], 1e-6);
    // Step 2: values from torch.optim.AdamW(lr=0.1, weight_decay=0.05).
    toy_step(1, &a, &b, &mut opt);
    assert_close(&a, &[0.8035358787, -2.1146516800], 1e-6);
    assert_close(&b, &[0.2968520522], 1e-6);
    assert_eq!(opt.steps_taken(), 2);
}

#[test]
fn state_round_trips_through_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, mut opt) = toy();
    toy_step(0, &a, &b, &mut opt);
    opt.save(&dir.path().join("optim.safetensors")).unwrap();
    toy_step(1, &a, &b, &mut opt);
    let straight = a.copy();

    let (a2, b2, mut resumed) = toy();
    tch::no_grad(|| {
        a2.shallow_clone().copy_(&Tensor::from_slice(&[0.895f32, -2.09]));
        b2.shallow_clone().copy_(&Tensor::from_slice(&[0.3975f32]));
    });
    resumed.load(&dir.path().join("optim.safetensors")).unwrap();
    assert_eq!(resumed.steps_taken(), 1);
    toy_step(1, &a2, &b2, &mut resumed);
    assert_close(&a2, &Vec::<f32>::try_from(&straight).unwrap().into_iter().map(f64::from).collect::<Vec<_>>(), 1e-6);
    assert!(resumed.load(&dir.path().join("missing.safetensors")).is_err());
}

#[test]
fn warmup_is_linear_then_constant() {
    let s = LrSchedule { lr: 1e-3, warmup: 4 };
    let lrs: Vec<f64> = (0..6).map(|i| s.at(i)).collect();
    assert_eq!(lrs, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
    assert_eq!(LrSchedule { lr: 0.5, warmup: 0 }.at(0), 0.5);
}

#[test]
fn the_clip_divisor_brings_the_joint_norm_to_the_maximum() {
    let p = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let q = Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let params = [p.shallow_clone(), q.shallow_clone()];
    assert!(clip_divisor(&params, 1.0).unwrap().is_none(), "no gradients yet");
    let loss = (&p * Tensor::from_slice(&[3.0f32, 0.0])).sum(Kind::Float) + (&q * 4.0).sum(Kind::Float);
    loss.backward();
    let (norm, divisor) = clip_divisor(&params, 1.0).unwrap().unwrap();
    assert!((norm.double_value(&[]) - 5.0).abs() < 1e-6);
    assert!((divisor.double_value(&[]) - 5.0).abs() < 1e-5);
    let (_, none) = clip_divisor(&params, 10.0).unwrap().unwrap();
    assert_eq!(none.double_value(&[]), 1.0, "no clipping below max");
}

#[test]
fn fused_steps_equal_the_reference_with_clipping_and_unused_parameters() {
    tch::manual_seed(3);
    let opts = (Kind::Float, tch::Device::Cpu);
    let shapes: [&[i64]; 4] = [&[7, 5], &[33], &[2, 3, 4, 4], &[1]];
    let params: Vec<Tensor> = shapes.iter().map(|s| Tensor::randn(*s, opts).set_requires_grad(true)).collect();
    let reference: Vec<Tensor> = params.iter().map(|p| p.detach().copy()).collect();
    let moments: Vec<(Tensor, Tensor)> = reference.iter().map(|p| (p.zeros_like(), p.zeros_like())).collect();
    let config = AdamWConfig { weight_decay: 0.1, ..Default::default() };
    let named = params.iter().enumerate().map(|(i, p)| (format!("p{i}"), p.shallow_clone())).collect();
    let mut opt = AdamW::new(named, config.clone());
    for step in 1..=5 {
        opt.zero_grad().unwrap();
        // The last parameter is unused on odd steps: it and its moments stay.
        let used = if step % 2 == 1 { 3 } else { 4 };
        let targets: Vec<Tensor> = params.iter().map(|p| Tensor::randn(p.size(), opts) * 3.0).collect();
        let loss = params[..used].iter().zip(&targets).map(|(p, t)| (p * t).sum(Kind::Float) + p.square().sum(Kind::Float)).fold(Tensor::zeros([], opts), |a, b| a + b);
        loss.backward();
        let (_, divisor) = clip_divisor(&params, 2.0).unwrap().unwrap();
        let lr = 0.01 * step as f64;
        // Read before the step: the kernel leaves the divided gradient behind.
        let grads: Vec<Tensor> = params[..used].iter().map(|p| p.grad() / &divisor).collect();
        opt.step(lr, Some(&divisor)).unwrap();
        for (i, grad) in grads.iter().enumerate() {
            adamw_per_tensor(&reference[i], &moments[i].0, &moments[i].1, grad, step, lr, &config);
            let left = (params[i].grad() - grad).abs().max().double_value(&[]);
            assert!(left < 1e-6, "step {step}, parameter {i}: the gradient left behind is not the divided one");
        }
        for (i, (p, r)) in params.iter().zip(&reference).enumerate() {
            // Rounding differs (the kernel divides by the scale inside, in
            // its own order): a few float32 ulps of a parameter near 3.
            // A wrong rule (decay, bias correction, a skipped tensor)
            // misses by the step size, 1e-2.
            let err = (p - r).abs().max().double_value(&[]);
            assert!(err < 1e-5, "step {step}, parameter {i}: fused and reference differ by {err}");
        }
    }
}

#[test]
fn toy_regression_converges() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let model = nn::linear(vs.root() / "fc", 3, 1, Default::default());
    let params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let mut opt = AdamW::new(params, AdamWConfig { weight_decay: 0.0, ..Default::default() });
    let x = Tensor::randn([64, 3], (Kind::Float, tch::Device::Cpu));
    let y = x.matmul(&Tensor::from_slice(&[1.5f32, -2.0, 0.5]).view([3, 1])) + 0.3;
    let mse = |opt: &mut AdamW, train: bool| {
        opt.zero_grad().unwrap();
        let loss = (model.forward(&x) - &y).square().mean(Kind::Float);
        if train {
            loss.backward();
            opt.step(0.05, None).unwrap();
        }
        loss.double_value(&[])
    };
    let start = mse(&mut opt, false);
    for _ in 0..400 {
        mse(&mut opt, true);
    }
    let end = mse(&mut opt, false);
    assert!(end < 1e-4 && end < start * 1e-3, "loss {start} -> {end}");
}
