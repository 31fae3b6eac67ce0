//! Behaviour of the assembled Patch-DiT: shapes, zero-init, texture-token
//! caching, gradient flow and bf16.

use super::config::DitConfig;
use super::model::PatchDiT;
use crate::conformance::max_abs_diff;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const B: i64 = 2;

/// A tiny Patch-DiT whose zero-initialised layers (adaLN, final linear,
/// cross-attention outputs, biases) get small random values, so that every
/// path of the network carries signal.
fn perturbed_tiny(seed: i64) -> (VarStore, PatchDiT) {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let model = PatchDiT::new(&vs.root(), &DitConfig::tiny()).unwrap();
    tch::no_grad(|| {
        for mut var in vs.trainable_variables() {
            if var.abs().max().double_value(&[]) == 0.0 {
                let _ = var.g_add_(&(var.randn_like() * 0.05));
            }
        }
    });
    (vs, model)
}

/// (y_t, y0, t, priors, sims) for the tiny config.
fn inputs(kind: Kind) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let cfg = DitConfig::tiny();
    let (c, v, k) = (cfg.in_channels, cfg.input_size, cfg.texture_k);
    let opts = (Kind::Float, Device::Cpu);
    let y_t = Tensor::randn([B, c, v, v], opts).to_kind(kind);
    let y0 = Tensor::randn([B, c, v, v], opts).to_kind(kind);
    let t = Tensor::from_slice(&[17f32, 912.0]);
    let priors = Tensor::randn([B, k, c, v, v], opts).to_kind(kind);
    let sims = Tensor::from_slice(&[0.93f32, 0.71, 0.88, 0.42]).view([B, k]);
    (y_t, y0, t, priors, sims)
}

#[test]
fn shapes_of_texture_tokens_and_noise() {
    let (_vs, model) = perturbed_tiny(0);
    let cfg = model.config().clone();
    let (y_t, y0, t, priors, sims) = inputs(Kind::Float);
    let tokens = model.encode_texture(&priors, &sims);
    assert_eq!(
        tokens.size(),
        [B, cfg.texture_k * cfg.tokens_per_patch(), cfg.hidden_size]
    );
    assert_eq!(model.forward(&y_t, &y0, &t, &tokens).size(), y_t.size());
}

#[test]
fn untrained_patch_dit_predicts_zero_noise() {
    tch::manual_seed(1);
    let vs = VarStore::new(Device::Cpu);
    let model = PatchDiT::new(&vs.root(), &DitConfig::tiny()).unwrap();
    let (y_t, y0, t, priors, sims) = inputs(Kind::Float);
    let eps = model.forward(&y_t, &y0, &t, &model.encode_texture(&priors, &sims));
    assert_eq!(eps.abs().max().double_value(&[]), 0.0);
}

/// The pipeline encodes the priors once per patch and reuses the tokens
/// for all N steps; that must give what re-encoding at every step gives.
#[test]
fn cached_texture_tokens_equal_recomputation_and_steps_are_deterministic() {
    let (_vs, model) = perturbed_tiny(2);
    let (y_t, y0, _, priors, sims) = inputs(Kind::Float);
    tch::no_grad(|| {
        let cached = model.encode_texture(&priors, &sims);
        for step in [999f32, 500.0, 3.0] {
            let t = Tensor::from_slice(&[step, step]);
            let with_cache = model.forward(&y_t, &y0, &t, &cached);
            let recomputed = model.forward(&y_t, &y0, &t, &model.encode_texture(&priors, &sims));
            assert!(
                with_cache.equal(&recomputed),
                "step {step}: cached tokens differ from recomputed ones"
            );
            assert!(
                with_cache.equal(&model.forward(&y_t, &y0, &t, &cached)),
                "step {step}: forward not deterministic"
            );
        }
        // The tokens carry the similarities, and the noise estimate reads the tokens.
        let other_sims = model.encode_texture(&priors, &(&sims * 0.5));
        assert!(
            max_abs_diff(&cached, &other_sims) > 1e-3,
            "tokens ignore the similarities"
        );
        let t = Tensor::from_slice(&[400f32, 400.0]);
        let eps = model.forward(&y_t, &y0, &t, &cached);
        assert!(
            max_abs_diff(&eps, &model.forward(&y_t, &y0, &t, &other_sims)) > 1e-5,
            "noise ignores the prompt"
        );
    });
}

#[test]
fn one_backward_step_reaches_every_parameter() {
    let (vs, model) = perturbed_tiny(3);
    let (y_t, y0, t, priors, sims) = inputs(Kind::Float);
    let eps = model.forward(&y_t, &y0, &t, &model.encode_texture(&priors, &sims));
    (eps - y_t.randn_like())
        .square()
        .mean(Kind::Float)
        .backward();
    for (name, var) in vs.variables() {
        if name.ends_with("pos_embed") {
            assert!(!var.requires_grad(), "{name} must stay fixed");
            continue;
        }
        let grad = var.grad();
        assert!(grad.defined(), "{name}: no gradient");
        assert!(
            grad.abs().max().double_value(&[]) > 0.0,
            "{name}: zero gradient"
        );
    }
}

#[test]
fn bf16_forward_tracks_f32() {
    let (mut vs, model) = perturbed_tiny(4);
    let (y_t, y0, t, priors, sims) = inputs(Kind::Float);
    let want = tch::no_grad(|| model.forward(&y_t, &y0, &t, &model.encode_texture(&priors, &sims)));
    vs.bfloat16();
    let bf = |x: &Tensor| x.to_kind(Kind::BFloat16);
    let got = tch::no_grad(|| {
        model.forward(
            &bf(&y_t),
            &bf(&y0),
            &t,
            &model.encode_texture(&bf(&priors), &sims),
        )
    });
    assert_eq!(got.kind(), Kind::BFloat16);
    let scale = want.abs().max().double_value(&[]);
    let err = max_abs_diff(&got, &want);
    eprintln!("bf16 vs f32: max abs error {err:.3e} on outputs up to {scale:.3e}");
    assert!(
        scale > 0.0 && err < 0.05 * scale,
        "bf16 drifts: {err} vs scale {scale}"
    );
}

#[test]
fn keys_follow_the_upstream_layout() {
    let vs = VarStore::new(Device::Cpu);
    let _model = PatchDiT::new(&vs.root(), &DitConfig::tiny()).unwrap();
    let names = vs.variables();
    for key in [
        "x_embedder.proj.weight",
        "pos_embed",
        "t_embedder.mlp.0.weight",
        "t_embedder.mlp.2.bias",
        "blocks.1.attn.qkv.weight",
        "blocks.1.norm_ca.weight",
        "blocks.1.cross_attn.q.weight",
        "blocks.1.cross_attn.kv.weight",
        "blocks.1.cross_attn.proj.bias",
        "blocks.1.mlp.fc2.weight",
        "blocks.1.adaLN_modulation.1.weight",
        "final_layer.linear.weight",
        "final_layer.adaLN_modulation.1.bias",
        "texture_encoder.x_embedder.proj.weight",
        "texture_encoder.pos_embed",
        "texture_encoder.s_embedder.mlp.0.weight",
        "texture_encoder.blocks.0.attn.proj.weight",
    ] {
        assert!(names.contains_key(key), "missing {key}");
    }
    assert!(!names
        .keys()
        .any(|k| k.starts_with("texture_encoder.blocks.0.cross_attn")));
    assert_eq!(
        names["x_embedder.proj.weight"].size(),
        [64, 8, 2, 2],
        "input is concat(y_t, y0)"
    );
    assert_eq!(
        names["final_layer.linear.weight"].size(),
        [16, 64],
        "output is c channels of noise"
    );
}

/// Keeps the parameter count in `DitConfig::cpu`'s documentation honest.
#[test]
fn cpu_preset_has_the_documented_size() {
    let vs = VarStore::new(Device::Cpu);
    let _model = PatchDiT::new(&vs.root(), &DitConfig::cpu()).unwrap();
    let total: i64 = vs
        .trainable_variables()
        .iter()
        .map(|v| v.numel() as i64)
        .sum();
    let texture: i64 = vs
        .variables()
        .iter()
        .filter(|(k, v)| k.starts_with("texture_encoder.") && v.requires_grad())
        .map(|(_, v)| v.numel() as i64)
        .sum();
    eprintln!("cpu preset: {total} parameters, {texture} in the texture encoder");
    assert_eq!((total, texture), (7_149_136, 2_088_960));
}

#[test]
fn invalid_config_is_an_error_not_a_panic() {
    let vs = VarStore::new(Device::Cpu);
    let bad = DitConfig {
        hidden_size: 66,
        ..DitConfig::tiny()
    };
    assert!(PatchDiT::new(&vs.root(), &bad).is_err());
}

/// The sampler computes the prompt's cross-attention keys and values once per
/// batch; reusing them must give what recomputing them in every block gives.
#[test]
fn cached_prompt_keys_and_values_give_the_same_noise() {
    let (_vs, model) = perturbed_tiny(4);
    let (y_t, y0, t, priors, sims) = inputs(Kind::Float);
    let tokens = model.encode_texture(&priors, &sims);
    let kv = model.prompt_kv(&tokens);
    let cached = model.forward_kv(&y_t, &y0, &t, &kv);
    let fresh = model.forward(&y_t, &y0, &t, &tokens);
    assert!(cached.equal(&fresh));
    // Reused at another step, they still match.
    let t2 = Tensor::from_slice(&[400f32, 3.0]);
    assert!(model.forward_kv(&y_t, &y0, &t2, &kv).equal(&model.forward(&y_t, &y0, &t2, &tokens)));
    // And another batch's prompt gives another prediction.
    let other = model.encode_texture(&priors.flip([0]), &sims.flip([0]));
    let d = max_abs_diff(&model.forward(&y_t, &y0, &t, &other), &fresh);
    assert!(d > 1e-4, "the prompt changed the prediction by only {d}");
}

/// With `y0_skip` a fresh model (adaLN-Zero: the network adds exactly zero)
/// returns y0; the skip needs the x0 target.
#[test]
fn a_fresh_y0_skip_model_returns_y0() {
    let vs = VarStore::new(Device::Cpu);
    let cfg = DitConfig { target: crate::diffusion::Prediction::X0, y0_skip: true, ..DitConfig::tiny() };
    let dit = PatchDiT::new(&vs.root(), &cfg).unwrap();
    let v = cfg.input_size;
    let y_t = Tensor::randn([2, cfg.in_channels, v, v], (Kind::Float, Device::Cpu));
    let y0 = Tensor::randn([2, cfg.in_channels, v, v], (Kind::Float, Device::Cpu));
    let priors = Tensor::randn([2, cfg.texture_k, cfg.in_channels, v, v], (Kind::Float, Device::Cpu));
    let tokens = dit.encode_texture(&priors, &Tensor::rand([2, cfg.texture_k], (Kind::Float, Device::Cpu)));
    let out = dit.forward(&y_t, &y0, &Tensor::from_slice(&[10f32, 900.0]), &tokens);
    assert!(out.equal(&y0));
    let eps = DitConfig { y0_skip: true, ..DitConfig::tiny() };
    assert!(PatchDiT::new(&vs.root(), &eps).is_err());
}
