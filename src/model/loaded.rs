//! A model in memory: every part built from its config and loaded from its
//! own file in the model folder.

use super::config::ModelConfig;
use super::files::{load_checked, save};
use crate::autoencoder::config::{AeConfig, AeKind};
use crate::autoencoder::{legacy_key_map, Autoencoder};
use crate::dit::model::PatchDiT;
use crate::grm::unet::Grm;
use crate::texture::classifier::TextureClassifier;
use crate::texture::config::TextureConfig;
use crate::texture::rtm::Rtm;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Device, Kind, Tensor};

pub const CONFIG_FILE: &str = "model.toml";
pub const AE_FILE: &str = "ae.safetensors";
pub const GRM_FILE: &str = "grm.safetensors";
pub const TEXTURE_FILE: &str = "texture.safetensors";
pub const DIT_FILE: &str = "dit.safetensors";
pub const RTM_FILE: &str = "rtm.safetensors";

/// One VarStore per part: parts train, load and change precision separately.
pub struct Model {
    pub config: ModelConfig,
    pub device: Device,
    pub ae_vs: VarStore,
    pub ae: Autoencoder,
    pub grm_vs: VarStore,
    pub grm: Grm,
    pub texture_vs: VarStore,
    pub classifier: TextureClassifier,
    pub dit_vs: VarStore,
    pub dit: PatchDiT,
    pub rtm: Rtm,
}

impl Model {
    /// A freshly initialised model (training starts here; tests use it).
    /// The RTM is filled with random latent patches until one is built.
    pub fn init(config: ModelConfig, device: Device, seed: i64) -> Result<Self> {
        Self::build(config, device, seed, |classifier, t| {
            let n = t.rtm_size.max(t.k);
            let values = Tensor::randn(
                [n, t.latent_channels, t.patch, t.patch],
                (Kind::Float, device),
            );
            let provenance = (0..n).map(|i| format!("random init {i}")).collect();
            tch::no_grad(|| Rtm::build(&values, classifier, n, seed as u64, provenance))
        })
    }

    /// Every part built from `config`, the RTM from `rtm` (given the
    /// classifier and the texture config).
    fn build(
        config: ModelConfig,
        device: Device,
        seed: i64,
        rtm: impl FnOnce(&TextureClassifier, &TextureConfig) -> Result<Rtm>,
    ) -> Result<Self> {
        config.validate()?;
        tch::manual_seed(seed);
        let ae_vs = VarStore::new(device);
        let ae = Autoencoder::new(&ae_vs.root(), &config.ae);
        let grm_vs = VarStore::new(device);
        let grm = Grm::new(&grm_vs.root(), &config.grm)?;
        let texture_vs = VarStore::new(device);
        let classifier = TextureClassifier::new(&texture_vs.root(), &config.texture)?;
        let dit_vs = VarStore::new(device);
        let dit = PatchDiT::new(&dit_vs.root(), &config.dit)?;
        let rtm = rtm(&classifier, &config.texture)?;
        Ok(Self {
            config,
            device,
            ae_vs,
            ae,
            grm_vs,
            grm,
            texture_vs,
            classifier,
            dit_vs,
            dit,
            rtm,
        })
    }

    /// Loads a model folder. `vae` replaces the AE weights by a diffusers
    /// AutoencoderKL file (e.g. the SD VAE), checked against the config.
    pub fn load(dir: &Path, device: Device, vae: Option<&Path>) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{}: model folder not found", dir.display());
        }
        let mut config = ModelConfig::load(&dir.join(CONFIG_FILE))?;
        let ae_file: PathBuf = match vae {
            Some(v) if config.ae.kind == AeKind::SpaceToDepth => bail!(
                "{}: the model in {} diffuses in the exact space-to-depth latent, which no VAE can replace",
                v.display(),
                dir.display()
            ),
            Some(v) => {
                if let Some(cfg) = diffusers_config_beside(v)? {
                    check_vae_fits(&config.ae, &cfg, v)?;
                    config.ae = cfg;
                }
                v.to_path_buf()
            }
            None => dir.join(AE_FILE),
        };
        // Built from the config, then every part overwritten from its file;
        // the RTM is read first, so no memory is built only to be replaced.
        let rtm_file = dir.join(RTM_FILE);
        let mut problems = Vec::new();
        let mut m = Self::build(config, device, 0, |_, _| Rtm::load(&rtm_file, device))
            .with_context(|| format!("cannot load the model in {}", dir.display()))?;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                problems.push(format!("{e:#}"));
            }
        };
        note(load_checked(&mut m.ae_vs, &ae_file, &|k| legacy_key_map(k)));
        note(load_checked(&mut m.grm_vs, &dir.join(GRM_FILE), &|_| None));
        note(load_checked(
            &mut m.texture_vs,
            &dir.join(TEXTURE_FILE),
            &|_| None,
        ));
        note(load_checked(&mut m.dit_vs, &dir.join(DIT_FILE), &|_| None));
        if !problems.is_empty() {
            bail!(
                "cannot load the model in {}:\n{}",
                dir.display(),
                problems.join("\n")
            );
        }
        m.check_rtm()?;
        Ok(m)
    }

    fn check_rtm(&self) -> Result<()> {
        let t = &self.config.texture;
        let v = self.rtm.values.size();
        if v.len() != 4
            || v[1] != t.latent_channels
            || v[2] != t.patch
            || v[3] != t.patch
            || v[0] < t.k
        {
            bail!(
                "RTM values have shape {v:?}; the config needs (>= {}, {}, {}, {})",
                t.k,
                t.latent_channels,
                t.patch,
                t.patch
            );
        }
        Ok(())
    }

    /// Writes the folder: config, one fp16 (or f32) file per part, the RTM.
    pub fn save(&self, dir: &Path, half: bool) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        self.config.save(&dir.join(CONFIG_FILE))?;
        // The exact latent's shift and scale stay float32: 1.5 KB, and the
        // latent every other part was trained in must not move by rounding.
        save(&self.ae_vs, &dir.join(AE_FILE), half && !self.ae.is_exact())?;
        save(&self.grm_vs, &dir.join(GRM_FILE), half)?;
        save(&self.texture_vs, &dir.join(TEXTURE_FILE), half)?;
        save(&self.dit_vs, &dir.join(DIT_FILE), half)?;
        self.rtm.save(&dir.join(RTM_FILE))?;
        Ok(())
    }

    /// Replaces every all-zero Patch-DiT tensor with N(0, std^2) values.
    /// adaLN-Zero starts the DiT at an exact zero prediction, so in a fresh
    /// model the prompt, the token indexing and the DiT itself cannot change
    /// the output; tests perturb them so that a fault there fails a test.
    /// A test fixture: in the unit tests and behind the `testing` feature
    /// (which the integration tests turn on), not in the shipped library.
    #[cfg(any(test, feature = "testing"))]
    pub fn perturb_zero_dit(&mut self, std: f64, seed: i64) {
        tch::manual_seed(seed);
        tch::no_grad(|| {
            let mut vars: Vec<_> = self.dit_vs.variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, mut t) in vars {
                if t.abs().max().double_value(&[]) == 0.0 {
                    let r = t.randn_like() * std;
                    t.copy_(&r);
                }
            }
        });
    }

    /// Runs the decoder, the texture classifier and Patch-DiT in `kind` (bf16:
    /// AMX on CPU, tensor cores on GPU); the sampler keeps f32. The encoder
    /// and the GRM stay float32: they decide the PGS groups, which must not
    /// depend on the precision (and cost little: one pass each).
    pub fn set_kind(&mut self, kind: Kind) {
        for vs in [&mut self.texture_vs, &mut self.dit_vs] {
            vs.set_kind(kind);
        }
        tch::no_grad(|| {
            for (name, mut t) in self.ae_vs.variables() {
                if name.starts_with("decoder.") || name.starts_with("post_quant_conv.") {
                    t.set_data(&t.to_kind(kind));
                }
            }
        });
    }

    pub fn kind(&self) -> Kind {
        self.dit_vs
            .variables()
            .values()
            .next()
            .map(|t| t.kind())
            .unwrap_or(Kind::Float)
    }

    pub fn parameter_count(&self) -> [(&'static str, i64); 4] {
        let n = |vs: &VarStore| {
            vs.variables()
                .values()
                .map(|t| t.numel() as i64)
                .sum::<i64>()
        };
        [
            ("ae", n(&self.ae_vs)),
            ("grm", n(&self.grm_vs)),
            ("texture", n(&self.texture_vs)),
            ("dit", n(&self.dit_vs)),
        ]
    }
}

fn diffusers_config_beside(vae: &Path) -> Result<Option<AeConfig>> {
    let cfg = vae.with_file_name("config.json");
    if cfg.exists() {
        return AeConfig::from_diffusers_json(&cfg).map(Some);
    }
    Ok(None)
}

fn check_vae_fits(model: &AeConfig, given: &AeConfig, path: &Path) -> Result<()> {
    if model.latent_channels != given.latent_channels
        || model.downsample_factor() != given.downsample_factor()
    {
        bail!(
            "{}: this VAE has {} latent channels and factor {}, the model was trained on {} and {}",
            path.display(),
            given.latent_channels,
            given.downsample_factor(),
            model.latent_channels,
            model.downsample_factor()
        );
    }
    Ok(())
}
