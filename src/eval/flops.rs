//! Multiply-adds of one upscale, counted from the weights (2 FLOPs each):
//! what `bench` reports beside the runtimes, so a figure can be compared
//! across machines. Convolutions are counted at the resolution their module
//! runs at, which follows from the module path (diffusers' AE layout, our GRM
//! and texture classifier); linear layers at the number of tokens they see.
//! Norms, activations, resizes and the colour fix are left out (a few % at most).

use crate::model::Model;
use tch::nn::VarStore;

/// FLOPs of each stage for one image; the Patch-DiT figures are per patch.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StageFlops {
    pub encode: f64,
    pub grm: f64,
    /// Texture classifier key, similarity-aware texture encoder and the
    /// prompt's cross-attention keys and values, per patch (all run once per
    /// patch, not per step).
    pub prompt_per_patch: f64,
    /// One Patch-DiT evaluation of one patch.
    pub dit_per_evaluation: f64,
    pub decode: f64,
}

impl StageFlops {
    /// The whole upscale: `patches` patches, `evaluations` denoiser calls and
    /// `decodes` decoder passes (2 with the bicubic detail, which decodes
    /// E(bicubic) too).
    pub fn total(&self, patches: usize, evaluations: usize, decodes: usize) -> f64 {
        self.encode + self.grm + self.decode * decodes as f64 + self.prompt_per_patch * patches as f64 + self.dit_per_evaluation * evaluations as f64
    }
}

/// Counts for an output of `out_h` x `out_w` pixels (padded to whole latent pixels).
pub fn stage_flops(model: &Model, out_h: i64, out_w: i64) -> StageFlops {
    let f = model.ae.downsample_factor();
    let latent = ((out_h + f - 1) / f) as f64 * ((out_w + f - 1) / f) as f64;
    let blocks = model.config.ae.block_out_channels.len() as i32;
    let ae = convs(&model.ae_vs);
    let enc = ae.iter().filter(|(n, _)| n.starts_with("encoder.") || n.starts_with("quant_conv"));
    let dec = ae.iter().filter(|(n, _)| n.starts_with("decoder.") || n.starts_with("post_quant_conv"));
    let area = |n: &str| latent * ae_scale(n, blocks).powi(2);
    let grm_levels = model.config.grm.channel_mult.len() as i32;
    let v = model.config.texture.patch as f64;
    let d = &model.config.dit;
    StageFlops {
        encode: enc.map(|(n, w)| conv_macs(w) * area(n)).sum::<f64>() * 2.0,
        decode: dec.map(|(n, w)| conv_macs(w) * area(n)).sum::<f64>() * 2.0,
        grm: convs(&model.grm_vs).iter().map(|(n, w)| conv_macs(w) * latent * grm_scale(n, grm_levels).powi(2)).sum::<f64>() * 2.0,
        prompt_per_patch: classifier_flops(&model.texture_vs, v) + dit_flops(&model.dit_vs, d.input_size, d.patch_size, d.texture_k, true),
        dit_per_evaluation: dit_flops(&model.dit_vs, d.input_size, d.patch_size, d.texture_k, false),
    }
}

/// (name, shape) of every 4-D (convolution) weight.
fn convs(vs: &VarStore) -> Vec<(String, Vec<i64>)> {
    let mut v: Vec<(String, Vec<i64>)> = vs.variables().into_iter().filter(|(_, t)| t.dim() == 4).map(|(n, t)| (n, t.size())).collect();
    v.sort();
    v
}

/// Multiply-adds per output pixel of a convolution weight (Cout, Cin, k, k).
fn conv_macs(w: &[i64]) -> f64 {
    w.iter().map(|&x| x as f64).product()
}

/// Side of the feature map an AE convolution runs at, relative to the latent.
/// diffusers layout: encoder block i at 2^(n-1-i), its downsampler writes
/// 2^(n-2-i); decoder block i at 2^i, its upsampler writes 2^(i+1).
fn ae_scale(name: &str, blocks: i32) -> f64 {
    let index = |prefix| block_index(name, prefix);
    let p = |e: i32| 2f64.powi(e);
    if name.starts_with("encoder.conv_in") {
        p(blocks - 1)
    } else if let Some(i) = index("encoder.down_blocks.") {
        if name.contains("downsamplers") { p(blocks - 2 - i) } else { p(blocks - 1 - i) }
    } else if let Some(i) = index("decoder.up_blocks.") {
        if name.contains("upsamplers") { p(i + 1) } else { p(i) }
    } else if name.starts_with("decoder.conv_out") {
        p(blocks - 1)
    } else {
        1.0 // mid blocks, conv_out of the encoder, conv_in of the decoder, quant convs
    }
}

/// The block number after `prefix` in a module path ("up.2.res..." -> 2).
fn block_index(name: &str, prefix: &str) -> Option<i32> {
    name.strip_prefix(prefix)?.split('.').next()?.parse().ok()
}

/// Side of the map a GRM convolution runs at, relative to the latent: level
/// i of the U-Net at 2^-i, its downsampler writes 2^-(i+1), the middle sits
/// at the lowest level.
fn grm_scale(name: &str, levels: i32) -> f64 {
    let level = |prefix| block_index(name, prefix);
    let p = |e: i32| 2f64.powi(-e);
    if let Some(i) = level("down.") {
        if name.contains("downsample") { p(i + 1) } else { p(i) }
    } else if let Some(i) = level("up.") {
        p(i)
    } else if name.starts_with("mid.") {
        p(levels - 1)
    } else {
        1.0 // conv_in and both heads
    }
}

/// The texture classifier on one V x V patch: stride-2 stages halve the side.
fn classifier_flops(vs: &VarStore, v: f64) -> f64 {
    let mut side = v;
    let mut total = 0.0;
    for (name, w) in convs(vs) {
        let stride2 = name.starts_with("blocks.") && !name.starts_with("blocks.0.");
        if stride2 {
            side /= 2.0;
        }
        total += conv_macs(&w) * side * side;
    }
    let proj: f64 = vs.variables().iter().filter(|(n, t)| n.starts_with("proj") && t.dim() == 2).map(|(_, t)| conv_macs(&t.size())).sum();
    2.0 * (total + proj)
}

/// Patch-DiT per evaluation (`texture_encoder` false) or what runs once per
/// patch (true): the texture encoder and the prompt's cross-attention keys
/// and values. N tokens per patch, K priors of N tokens each.
fn dit_flops(vs: &VarStore, input: i64, patch: i64, k: i64, per_patch: bool) -> f64 {
    let n = ((input / patch) * (input / patch)) as f64;
    let k = k as f64;
    let mut macs = 0.0;
    for (name, t) in vs.variables() {
        let texture_encoder = name.starts_with("texture_encoder.");
        if (texture_encoder || name.contains("cross_attn.kv")) != per_patch {
            continue;
        }
        let s = t.size();
        // Rows the weight is applied to, per patch.
        let rows = if name.contains("adaLN") || name.contains("_embedder.mlp") {
            if texture_encoder { k } else { 1.0 }
        } else if name.contains("cross_attn.kv") || texture_encoder {
            k * n
        } else {
            n
        };
        match s.len() {
            2 => macs += rows * (s[0] * s[1]) as f64,
            // Patch embedding: one kernel application per token.
            4 => macs += rows * conv_macs(&s),
            _ => {}
        }
        if name.ends_with("attn.qkv.weight") {
            // Q K^T and A V over the patch's own tokens (the encoder: per prior).
            macs += 2.0 * n * n * s[1] as f64 * if texture_encoder { k } else { 1.0 };
        }
        if name.ends_with("cross_attn.q.weight") {
            macs += 2.0 * n * (k * n) * s[1] as f64;
        }
    }
    2.0 * macs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    #[test]
    fn scales_follow_the_module_paths() {
        assert_eq!(ae_scale("encoder.conv_in.weight", 4), 8.0);
        assert_eq!(ae_scale("encoder.down_blocks.0.resnets.0.conv1.weight", 4), 8.0);
        assert_eq!(ae_scale("encoder.down_blocks.0.downsamplers.0.conv.weight", 4), 4.0);
        assert_eq!(ae_scale("encoder.down_blocks.3.resnets.0.conv1.weight", 4), 1.0);
        assert_eq!(ae_scale("decoder.up_blocks.3.resnets.1.conv2.weight", 4), 8.0);
        assert_eq!(ae_scale("decoder.up_blocks.2.upsamplers.0.conv.weight", 4), 8.0);
        assert_eq!(ae_scale("decoder.conv_out.weight", 4), 8.0);
        assert_eq!(grm_scale("down.1.downsample.weight", 3), 0.25);
        assert_eq!(grm_scale("mid.0.conv1.weight", 3), 0.25);
        assert_eq!(grm_scale("up.2.res.0.conv1.weight", 3), 0.25);
    }

    #[test]
    fn counts_grow_with_the_image_and_the_evaluations() {
        let model = Model::init(ModelConfig::tiny(), tch::Device::Cpu, 0).unwrap();
        let small = stage_flops(&model, 64, 64);
        let big = stage_flops(&model, 128, 128);
        assert!((big.encode / small.encode - 4.0).abs() < 1e-9 && (big.grm / small.grm - 4.0).abs() < 1e-9);
        assert_eq!(big.dit_per_evaluation, small.dit_per_evaluation);
        assert!(small.dit_per_evaluation > 0.0 && small.prompt_per_patch > 0.0);
        assert!(small.total(9, 90, 1) > small.total(9, 40, 1));
        assert_eq!(small.total(9, 40, 2) - small.total(9, 40, 1), small.decode);
        // A DiT evaluation is at least its linear layers: 2 * params * tokens / patch... within reason.
        let params: i64 = model.dit_vs.variables().iter().filter(|(n, _)| !n.starts_with("texture_encoder.")).map(|(_, t)| t.numel() as i64).sum();
        let tokens = (model.config.dit.input_size / model.config.dit.patch_size).pow(2) as f64;
        assert!(small.dit_per_evaluation < 2.0 * params as f64 * tokens * 4.0);
    }
}
