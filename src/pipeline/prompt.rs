//! The texture prompt: retrieve top-K RTM priors for every patch and encode
//! them once. The encoder does not see t, so its tokens serve all N steps.

use super::options::{PromptMode, SamplingOptions};
use crate::model::Model;
use crate::texture::retrieval::retrieve;
use anyhow::Result;
use tch::{Kind, Tensor};

/// Texture-encoder tokens for every patch of `y0` (P, c, V, V), batched.
pub fn texture_tokens(model: &Model, y0: &Tensor, opts: &SamplingOptions) -> Result<Tensor> {
    let kind = model.kind();
    let k = model.config.texture.k;
    let p = y0.size()[0];
    let batch = opts.max_batch.max(1) as i64;
    let mut out = Vec::new();
    let mut start = 0;
    while start < p {
        let n = batch.min(p - start);
        let chunk = y0.narrow(0, start, n);
        let (priors, sims) = match opts.prompt {
            PromptMode::Retrieved => retrieve(&model.rtm, &model.classifier, &chunk.to_kind(kind), k)?,
            PromptMode::Zeros => {
                let s = chunk.size();
                (
                    Tensor::zeros([n, k, s[1], s[2], s[3]], (Kind::Float, chunk.device())),
                    Tensor::zeros([n, k], (Kind::Float, chunk.device())),
                )
            }
        };
        out.push(model.dit.encode_texture(&priors.to_kind(kind), &sims.to_kind(kind)));
        start += n;
    }
    Ok(Tensor::cat(&out, 0))
}
