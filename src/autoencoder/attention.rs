//! The single-head self-attention of the VAE mid block (diffusers
//! `Attention` with `AttnProcessor2_0`, one head of width C).

use super::resnet::NORM_EPS;
use crate::nn::group_norm;
use tch::{nn, nn::Module, Tensor};

#[derive(Debug)]
pub struct MidAttention {
    group_norm: nn::GroupNorm,
    to_q: nn::Linear,
    to_k: nn::Linear,
    to_v: nn::Linear,
    to_out: nn::Linear,
}

impl MidAttention {
    pub fn new(vs: &nn::Path, channels: i64, groups: i64) -> Self {
        let linear = |name: &str| nn::linear(vs / name, channels, channels, Default::default());
        Self {
            group_norm: group_norm(vs / "group_norm", groups, channels, NORM_EPS),
            to_q: linear("to_q"),
            to_k: linear("to_k"),
            to_v: linear("to_v"),
            // diffusers keeps `to_out` as [Linear, Dropout]; only index 0 has weights.
            to_out: nn::linear(vs / "to_out" / "0", channels, channels, Default::default()),
        }
    }

    /// Every latent pixel attends to every other one (tokens in row-major
    /// order), with the residual added back; scale 1/sqrt(C).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (b, c, h, w) = x.size4().expect("MidAttention expects an NCHW tensor");
        let tokens = self.group_norm.forward(x).view([b, c, h * w]).transpose(1, 2);
        let q = self.to_q.forward(&tokens);
        let k = self.to_k.forward(&tokens);
        let v = self.to_v.forward(&tokens);
        let scale = 1.0 / (c as f64).sqrt();
        let attended = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, scale, false);
        let out = self.to_out.forward(&attended).transpose(1, 2).reshape([b, c, h, w]);
        out + x
    }
}

/// Maps a state_dict key from before diffusers 0.14, when the mid-block
/// attention was `AttentionBlock` with `query`/`key`/`value`/`proj_attn`,
/// to today's name; `None` when the key needs no renaming. The tensors have
/// the same (C, C) shapes, so old SD VAE files load with names alone.
pub fn legacy_key_map(name: &str) -> Option<String> {
    const RENAMES: [(&str, &str); 4] =
        [(".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0.")];
    if !name.contains(".attentions.") {
        return None;
    }
    RENAMES.iter().find(|(old, _)| name.contains(old)).map(|(old, new)| name.replacen(old, new, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn legacy_names_map_to_current_ones() {
        let cases = [
            ("encoder.mid_block.attentions.0.query.weight", "encoder.mid_block.attentions.0.to_q.weight"),
            ("encoder.mid_block.attentions.0.key.bias", "encoder.mid_block.attentions.0.to_k.bias"),
            ("decoder.mid_block.attentions.0.value.weight", "decoder.mid_block.attentions.0.to_v.weight"),
            ("decoder.mid_block.attentions.0.proj_attn.bias", "decoder.mid_block.attentions.0.to_out.0.bias"),
        ];
        for (old, new) in cases {
            assert_eq!(legacy_key_map(old).as_deref(), Some(new));
        }
        assert_eq!(legacy_key_map("decoder.mid_block.attentions.0.to_q.weight"), None);
        assert_eq!(legacy_key_map("encoder.mid_block.attentions.0.group_norm.weight"), None);
        assert_eq!(legacy_key_map("decoder.up_blocks.0.resnets.0.conv1.weight"), None);
    }

    /// The fused kernel must equal the textbook softmax(QK^T/sqrt(C))V.
    #[test]
    fn matches_explicit_softmax_attention() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let attn = MidAttention::new(&vs.root(), 8, 4);
        let x = Tensor::randn([2, 8, 3, 5], (Kind::Float, Device::Cpu));
        let t = attn.group_norm.forward(&x).view([2, 8, 15]).transpose(1, 2);
        let (q, k, v) = (attn.to_q.forward(&t), attn.to_k.forward(&t), attn.to_v.forward(&t));
        let p = (q.matmul(&k.transpose(1, 2)) / 8f64.sqrt()).softmax(-1, Kind::Float);
        let expect = attn.to_out.forward(&p.matmul(&v)).transpose(1, 2).reshape([2, 8, 3, 5]) + &x;
        let err = crate::conformance::max_abs_diff(&attn.forward(&x), &expect);
        assert!(err < 1e-5, "max abs error {err}");
    }
}
