//! The two kinds of latent a model can diffuse in (`ae.kind` in model.toml):
//! the learned `AutoencoderKL` (the paper's, or ours) and the exact
//! space-to-depth latent. Everything after the encoder sees only this type,
//! so the GRM, PGS, the Patch-DiT, the RTM and every trainer take either.

use super::config::{AeConfig, AeKind};
use super::model::AutoencoderKL;
use super::space_to_depth::SpaceToDepth;
use tch::{nn, Device, Kind, Tensor};

#[derive(Debug)]
pub enum Autoencoder {
    Learned(AutoencoderKL),
    SpaceToDepth(SpaceToDepth, AeConfig),
}

impl Autoencoder {
    /// Builds the kind `cfg.kind` names, its variables under `vs`.
    pub fn new(vs: &nn::Path, cfg: &AeConfig) -> Self {
        match cfg.kind {
            AeKind::Learned => Self::Learned(AutoencoderKL::new(vs, cfg)),
            AeKind::SpaceToDepth => {
                Self::SpaceToDepth(SpaceToDepth::new(vs, cfg.downsample_factor(), cfg.latent_channels), cfg.clone())
            }
        }
    }

    pub fn config(&self) -> &AeConfig {
        match self {
            Self::Learned(ae) => ae.config(),
            Self::SpaceToDepth(_, cfg) => cfg,
        }
    }

    /// The learned network, when there is one (its trainer needs it).
    pub fn learned(&self) -> Option<&AutoencoderKL> {
        match self {
            Self::Learned(ae) => Some(ae),
            Self::SpaceToDepth(..) => None,
        }
    }

    /// Whether decode(encode(x)) is x: no reconstruction loss to correct,
    /// no network to tile, nothing to train.
    pub fn is_exact(&self) -> bool {
        matches!(self, Self::SpaceToDepth(..))
    }

    pub fn downsample_factor(&self) -> i64 {
        self.config().downsample_factor()
    }

    /// Dtype of the encoder's weights (float32 for the exact latent).
    pub fn kind(&self) -> Kind {
        match self {
            Self::Learned(ae) => ae.kind(),
            Self::SpaceToDepth(..) => Kind::Float,
        }
    }

    /// Dtype latents are decoded in.
    pub fn decoder_kind(&self) -> Kind {
        match self {
            Self::Learned(ae) => ae.decoder_kind(),
            Self::SpaceToDepth(..) => Kind::Float,
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Self::Learned(ae) => ae.device(),
            Self::SpaceToDepth(s, _) => s.shift.device(),
        }
    }

    /// Image in [-1, 1] -> the scaled latent the diffusion model works on.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        match self {
            Self::Learned(ae) => ae.encode(x),
            Self::SpaceToDepth(s, _) => s.encode(x),
        }
    }

    /// Scaled latent -> image in roughly [-1, 1] (not clamped).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        match self {
            Self::Learned(ae) => ae.decode(z),
            Self::SpaceToDepth(s, _) => s.decode(z),
        }
    }
}
