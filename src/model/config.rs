//! `model.toml`: every size and setting a model needs, beside its weights.

use crate::autoencoder::config::AeConfig;
use crate::colorfix::ColorFix;
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

    /// The paper's layout: the SD VAE (KL-f8) and a DiT-B-like Patch-DiT.
    pub fn paper() -> Self {
        Self::assemble("paper", AeConfig::sd_vae(), GrmConfig::paper(), DitConfig::b(), TextureConfig::paper())
    }

    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "cpu" => Ok(Self::cpu()),
            "paper" => Ok(Self::paper()),
            _ => bail!("unknown model preset `{name}` (known: tiny, cpu, paper)"),
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
        for cfg in [ModelConfig::tiny(), ModelConfig::cpu(), ModelConfig::paper()] {
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
