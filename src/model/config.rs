//! `model.toml`: every size and setting a model needs, beside its weights.

use crate::autoencoder::config::AeConfig;
use crate::colorfix::ColorFix;
use crate::diffusion::prediction::Prediction;
use crate::diffusion::schedule::DiffusionConfig;
use crate::dit::config::DitConfig;
use crate::grm::config::GrmConfig;
use crate::pgs::groups::PgsConfig;
use crate::texture::TextureConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The whole model. The diffusion schedule lives here so that training and
/// sampling can never disagree on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub name: String,
    /// Native upscaling factor of the pipeline (the paper's x4).
    pub scale: i64,
    pub ae: AeConfig,
    pub grm: GrmConfig,
    pub dit: DitConfig,
    pub texture: TextureConfig,
    pub diffusion: DiffusionConfig,
    /// Default sampling plan (groups, thresholds, patch size and stride).
    pub pgs: PgsConfig,
    pub colorfix: ColorFix,
}

impl ModelConfig {
    /// Every part at toy size: the whole pipeline runs on CPU in about a second.
    pub fn tiny() -> Self {
        Self::assemble("tiny", AeConfig::tiny(), GrmConfig::tiny(), DitConfig::tiny(), TextureConfig::tiny())
    }

    /// `tiny` on the exact latent (f = 2, 12 channels), x0 target: for tests.
    pub fn tiny_s2d() -> Self {
        let ae = AeConfig::space_to_depth(2);
        let c = ae.latent_channels;
        let grm = GrmConfig { latent_channels: c, ..GrmConfig::tiny() };
        let dit = DitConfig { in_channels: c, target: Prediction::X0, y0_skip: true, ..DitConfig::tiny() };
        let texture = TextureConfig { latent_channels: c, ..TextureConfig::tiny() };
        Self::assemble("tiny-s2d", ae, grm, dit, texture)
    }

    /// The shipped CPU default: small AE, GRM and Patch-DiT sized for 2 cores.
    /// Its latent has 16 channels at f = 8 (the part presets say 4): the same
    /// 12x compression as an f = 4, 4-channel latent, so the small AE can
    /// reconstruct finely, with 4x fewer latent patches for Patch-DiT. The
    /// RTM holds 1,000 entries so that the model stays under 60 MB.
    pub fn cpu() -> Self {
        const C: i64 = 16;
        let mut m = Self::assemble("cpu", AeConfig::cpu(), GrmConfig::cpu(), DitConfig::cpu(), TextureConfig::cpu());
        m.ae.latent_channels = C;
        m.grm.latent_channels = C;
        m.dit.in_channels = C;
        m.texture.latent_channels = C;
        m.texture.rtm_size = 1000;
        m
    }

    /// The `cpu` preset's parts on the exact latent (SPEC §7): space-to-depth
    /// at f = 8 (192 channels on the same 1/8 grid), nothing to encode or
    /// decode, so the compute the autoencoder took goes to a wider GRM. The
    /// Patch-DiT predicts x0: with 2 x 2 x 192 = 768 values per token it is in
    /// the regime where predicting the clean image trains and predicting the
    /// noise does not (Li and He 2025); and it predicts it as y0 plus a
    /// residual (`DitConfig::y0_skip`). An RTM entry is 49,152 values (98 KB
    /// in half precision), so the memory holds 184 of them and the model
    /// stays under the 48 MB the GPU upload leaves it (47.3 MB in fp16).
    pub fn s2d() -> Self {
        let ae = AeConfig::space_to_depth(8);
        let c = ae.latent_channels;
        let grm = GrmConfig { latent_channels: c, base_channels: 96, ..GrmConfig::cpu() };
        let dit = DitConfig { in_channels: c, target: Prediction::X0, y0_skip: true, ..DitConfig::cpu() };
        let texture = TextureConfig { latent_channels: c, rtm_size: 184, ..TextureConfig::cpu() };
        Self::assemble("s2d", ae, grm, dit, texture)
    }

    /// The paper's layout: the SD VAE (KL-f8) and a DiT-B-like Patch-DiT.
    pub fn paper() -> Self {
        Self::assemble("paper", AeConfig::sd_vae(), GrmConfig::paper(), DitConfig::b(), TextureConfig::paper())
    }

    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "tiny-s2d" => Ok(Self::tiny_s2d()),
            "cpu" => Ok(Self::cpu()),
            "s2d" => Ok(Self::s2d()),
            "paper" => Ok(Self::paper()),
            _ => bail!("unknown model preset `{name}` (known: tiny, tiny-s2d, cpu, s2d, paper)"),
        }
    }

    fn assemble(name: &str, ae: AeConfig, grm: GrmConfig, dit: DitConfig, texture: TextureConfig) -> Self {
        let pgs = PgsConfig::paper();
        Self {
            name: name.to_string(),
            scale: 4,
            ae,
            grm,
            dit,
            texture,
            diffusion: DiffusionConfig::default(),
            pgs,
            colorfix: ColorFix::Wavelet,
        }
    }

    /// Checks that the parts fit together, naming each disagreement.
    pub fn validate(&self) -> Result<()> {
        let c = self.ae.latent_channels;
        let mut problems = Vec::new();
        if self.grm.latent_channels != c {
            problems.push(format!("grm.latent_channels = {} but ae.latent_channels = {c}", self.grm.latent_channels));
        }
        if self.dit.in_channels != c {
            problems.push(format!("dit.in_channels = {} but ae.latent_channels = {c}", self.dit.in_channels));
        }
        if self.texture.latent_channels != c {
            problems.push(format!("texture.latent_channels = {} but ae.latent_channels = {c}", self.texture.latent_channels));
        }
        if self.dit.input_size as usize != self.pgs.patch {
            problems.push(format!("dit.input_size = {} but pgs.patch = {}", self.dit.input_size, self.pgs.patch));
        }
        if self.texture.patch as usize != self.pgs.patch {
            problems.push(format!("texture.patch = {} but pgs.patch = {}", self.texture.patch, self.pgs.patch));
        }
        if self.dit.texture_k as i64 != self.texture.k as i64 {
            problems.push(format!("dit.texture_k = {} but texture.k = {}", self.dit.texture_k, self.texture.k));
        }
        if self.scale < 1 {
            problems.push(format!("scale = {} must be at least 1", self.scale));
        }
        if let Err(e) = self.pgs.validate() {
            problems.push(e.to_string());
        }
        if !problems.is_empty() {
            bail!("inconsistent model config:\n  {}", problems.join("\n  "));
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the model config", path.display()))?;
        let cfg: Self = toml::from_str(&text).with_context(|| format!("{}: invalid model config", path.display()))?;
        cfg.validate().with_context(|| format!("{}", path.display()))?;
        Ok(cfg)
    }

    /// Writes atomically: a model folder never holds a half-written config.
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let text = toml::to_string_pretty(self)?;
        let mut tmp = crate::atomic::temp_file_in(crate::atomic::parent_dir(path), ".toml")?;
        tmp.write_all(text.as_bytes()).with_context(|| format!("{}: cannot write", path.display()))?;
        tmp.persist(path).with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_consistent_and_round_trip_through_toml() {
        for cfg in [ModelConfig::tiny(), ModelConfig::tiny_s2d(), ModelConfig::cpu(), ModelConfig::s2d(), ModelConfig::paper()] {
            cfg.validate().unwrap();
            let text = toml::to_string_pretty(&cfg).unwrap();
            let back: ModelConfig = toml::from_str(&text).unwrap();
            assert_eq!(back, cfg);
        }
    }

    #[test]
    fn inconsistencies_are_all_reported() {
        let mut cfg = ModelConfig::tiny();
        cfg.grm.latent_channels += 1;
        cfg.dit.input_size += 2;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("grm.latent_channels") && e.contains("dit.input_size"), "{e}");
    }
}
