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
    opt.zero_grad();
    let c = Tensor::from_slice(&[0.5f32, 3.0]);
    let loss = (a * c).sum(Kind::Float) + b.square().sum(Kind::Float) * (i + 1) + a.square().sum(Kind::Float) * i;
    loss.backward();
    opt.step(0.1);
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
fn clipping_scales_the_joint_gradient_norm() {
    let p = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let q = Tensor::zeros([1], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let loss = (&p * Tensor::from_slice(&[3.0f32, 0.0])).sum(Kind::Float) + (&q * 4.0).sum(Kind::Float);
    loss.backward();
    let norm = clip_grad_norm(&[p.shallow_clone(), q.shallow_clone()], 1.0);
    assert!((norm - 5.0).abs() < 1e-9, "norm {norm}");
    assert_close(&p.grad(), &[0.6, 0.0], 1e-6);
    assert_close(&q.grad(), &[0.8], 1e-6);
    assert!((clip_grad_norm(&[p.shallow_clone(), q.shallow_clone()], 10.0) - 1.0).abs() < 1e-5, "no clipping below max");
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
        opt.zero_grad();
        let loss = (model.forward(&x) - &y).square().mean(Kind::Float);
        if train {
            loss.backward();
            opt.step(0.05);
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
