//! The DiT parts against upstream's numbers (conformance kit, `dit/`),
//! strict tier: CPU float32, tolerances from the kit README section 2.

use super::block::DitBlock;
use super::class_dit::Dit;
use super::config::DitConfig;
use super::embed::{
    get_2d_sincos_pos_embed, timestep_embedding, PatchEmbed, TimestepEmbedder,
    FREQUENCY_EMBEDDING_SIZE,
};
use super::final_layer::{unpatchify, FinalLayer};
use super::layers::modulate;
use crate::conformance::{self, max_abs_diff};
use std::collections::{BTreeSet, HashMap};
use tch::nn;
use tch::{Device, Kind, Tensor};

/// Outputs of blocks, final layer, patch embed and the tiny DiT.
const STRICT: f64 = 2e-6;

/// Loads `dit/{name}_weights.safetensors` into `vs`, insisting that the file
/// and the model name exactly the same tensors, and returns `{name}_io`.
fn load_pair(vs: &mut nn::VarStore, name: &str) -> Option<HashMap<String, Tensor>> {
    let dir = conformance::dir()?.join("dit");
    let weights = dir.join(format!("{name}_weights.safetensors"));
    let file_keys: BTreeSet<String> = Tensor::read_safetensors(&weights)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let model_keys: BTreeSet<String> = vs.variables().into_keys().collect();
    assert_eq!(model_keys, file_keys, "state-dict keys of {name}");
    vs.load(&weights).unwrap();
    conformance::load(&format!("dit/{name}_io.safetensors"))
}

fn assert_close(name: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let err = max_abs_diff(got, want);
    eprintln!("{name}: max abs error {err:.3e} (tolerance {tol:.0e})");
    assert!(err <= tol, "{name}: max abs error {err:e} > {tol:e}");
}

#[test]
fn timestep_embedder_matches_upstream() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let embedder = TimestepEmbedder::new(vs.root(), 64);
    let Some(io) = load_pair(&mut vs, "timestep_embedder") else {
        return;
    };
    assert_close(
        "t_freq",
        &timestep_embedding(&io["t_float"], FREQUENCY_EMBEDDING_SIZE),
        &io["t_freq"],
        1e-4,
    );
    assert_close(
        "t_emb",
        &embedder.forward(&io["t_float"]),
        &io["t_emb"],
        2e-5,
    );
    // Integer timesteps are accepted and mean the same.
    assert_close(
        "t_emb (int64 t)",
        &embedder.forward(&io["t"]),
        &io["t_emb"],
        2e-5,
    );
}

#[test]
fn pos_embed_matches_upstream_in_f64() {
    let Some(want) = conformance::load("dit/pos_embed.safetensors") else {
        return;
    };
    let small = get_2d_sincos_pos_embed(64, 4);
    assert_eq!(small.kind(), Kind::Double);
    assert_close("pos_embed_64_4", &small, &want["pos_embed_64_4"], 1e-12);
    assert_close(
        "pos_embed_384_8",
        &get_2d_sincos_pos_embed(384, 8),
        &want["pos_embed_384_8"],
        1e-12,
    );
    assert_close(
        "pos_embed_64_4_f32",
        &small.to_kind(Kind::Float),
        &want["pos_embed_64_4_f32"],
        0.0,
    );
}

#[test]
fn patch_embed_matches_upstream() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let embed = PatchEmbed::new(vs.root(), 4, 64, 2);
    let Some(io) = load_pair(&mut vs, "patch_embed") else {
        return;
    };
    assert_close("patch_embed", &embed.forward(&io["x"]), &io["out"], STRICT);
}

#[test]
fn dit_block_matches_upstream_step_by_step() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let block = DitBlock::new(vs.root(), 64, 4, 256, false);
    let Some(io) = load_pair(&mut vs, "dit_block") else {
        return;
    };
    let (x, c) = (&io["x"], &io["c"]);
    // The intermediates pin down each convention separately.
    let chunks = block.ada_ln.forward(c);
    assert_close(
        "adaln_out",
        &Tensor::cat(&chunks, 1),
        &io["adaln_out"],
        STRICT,
    );
    let attn_in = modulate(&block.norm1.forward(x), &chunks[0], &chunks[1]);
    assert_close("attn_in", &attn_in, &io["attn_in"], STRICT);
    assert_close(
        "attn_out",
        &block.attn.forward(&io["attn_in"]),
        &io["attn_out"],
        STRICT,
    );
    let after_attn = x + chunks[2].unsqueeze(1) * &io["attn_out"];
    assert_close("x_after_attn", &after_attn, &io["x_after_attn"], STRICT);
    let mlp_in = modulate(
        &block.norm2.forward(&io["x_after_attn"]),
        &chunks[3],
        &chunks[4],
    );
    assert_close("mlp_in", &mlp_in, &io["mlp_in"], STRICT);
    assert_close(
        "mlp_out",
        &block.mlp.forward(&io["mlp_in"]),
        &io["mlp_out"],
        STRICT,
    );
    assert_close("block out", &block.forward(x, c, None), &io["out"], STRICT);
}

#[test]
fn final_layer_matches_upstream() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let layer = FinalLayer::new(vs.root(), 64, 2, 4);
    let Some(io) = load_pair(&mut vs, "final_layer") else {
        return;
    };
    let chunks = layer.ada_ln.forward(&io["c"]);
    assert_close(
        "final adaln_out",
        &Tensor::cat(&chunks, 1),
        &io["adaln_out"],
        STRICT,
    );
    let out = layer.forward(&io["x"], &io["c"]);
    assert_close("final out", &out, &io["out"], STRICT);
    assert_close(
        "final out_unpatchified",
        &unpatchify(&out, 4, 2),
        &io["out_unpatchified"],
        STRICT,
    );
}

#[test]
fn unpatchify_is_exact() {
    let Some(io) = conformance::load("dit/unpatchify.safetensors") else {
        return;
    };
    let image = unpatchify(&io["tokens"], 4, 2);
    assert_eq!(image.size(), io["image"].size());
    assert!(
        image.equal(&io["image"]),
        "unpatchify layout differs from DiT's"
    );
}

#[test]
fn tiny_dit_matches_upstream() {
    let cfg = DitConfig {
        input_size: 8,
        ..DitConfig::tiny()
    };
    let mut vs = nn::VarStore::new(Device::Cpu);
    let dit = Dit::new(&vs.root(), &cfg, 10, true).unwrap();
    let Some(io) = load_pair(&mut vs, "dit_tiny") else {
        return;
    };
    let out = tch::no_grad(|| dit.forward(&io["x"], &io["t"], &io["y"]));
    assert_eq!(out.size(), [2, 8, 8, 8]);
    assert_close("dit_tiny", &out, &io["out"], STRICT);
}
