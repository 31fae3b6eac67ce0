//! diffusers `AutoencoderKL`: the frozen image <-> latent map PatchScaler
//! diffuses in. Weights load by diffusers' state_dict names.

use super::config::AeConfig;
use super::decoder::Decoder;
use super::encoder::Encoder;
use tch::{nn, nn::Module, Kind, Tensor};

/// diffusers clamps the log-variance to keep exp() finite.
const LOGVAR_RANGE: (f64, f64) = (-30.0, 20.0);

#[derive(Debug)]
pub struct AutoencoderKL {
    encoder: Encoder,
    quant_conv: Option<nn::Conv2D>,
    post_quant_conv: Option<nn::Conv2D>,
    decoder: Decoder,
    cfg: AeConfig,
}

impl AutoencoderKL {
    /// Builds the module tree under `vs`, whose variables are then named
    /// exactly as `AutoencoderKL.state_dict()` (`encoder.conv_in.weight`, ...).
    pub fn new(vs: &nn::Path, cfg: &AeConfig) -> Self {
        let moments = 2 * cfg.latent_channels;
        let latent = cfg.latent_channels;
        Self {
            encoder: Encoder::new(&(vs / "encoder"), cfg),
            quant_conv: cfg
                .use_quant_conv
                .then(|| nn::conv2d(vs / "quant_conv", moments, moments, 1, Default::default())),
            post_quant_conv: cfg.use_post_quant_conv.then(|| {
                nn::conv2d(
                    vs / "post_quant_conv",
                    latent,
                    latent,
                    1,
                    Default::default(),
                )
            }),
            decoder: Decoder::new(&(vs / "decoder"), cfg),
            cfg: cfg.clone(),
        }
    }

    pub fn config(&self) -> &AeConfig {
        &self.cfg
    }

    pub fn downsample_factor(&self) -> i64 {
        self.cfg.downsample_factor()
    }

    /// The dtype of the weights: inputs are cast to it, so a bf16 model
    /// accepts f32 images.
    pub fn kind(&self) -> Kind {
        self.encoder.conv_in.ws.kind()
    }

    /// The dtype of the decoder half, which may differ from the encoder's
    /// (`Model::set_kind` keeps the encoder float32).
    pub fn decoder_kind(&self) -> Kind {
        self.decoder.conv_in.ws.kind()
    }

    /// Where the weights live: inputs are moved there.
    pub fn device(&self) -> tch::Device {
        self.encoder.conv_in.ws.device()
    }

    /// The encoder's raw output (mean and log-variance stacked on channels),
    /// before `quant_conv`. Input in [-1, 1], sides multiples of the factor.
    pub fn encoder_out(&self, x: &Tensor) -> Tensor {
        self.encoder.forward(&x.to_kind(self.kind()))
    }

    /// The diagonal Gaussian posterior q(z|x) as (mean, clamped logvar),
    /// both unscaled (B, latent, H/f, W/f).
    pub fn posterior(&self, x: &Tensor) -> (Tensor, Tensor) {
        let h = self.encoder_out(x);
        let moments = match &self.quant_conv {
            Some(conv) => conv.forward(&h),
            None => h,
        };
        let halves = moments.chunk(2, 1);
        let logvar = halves[1].clamp(LOGVAR_RANGE.0, LOGVAR_RANGE.1);
        (halves[0].shallow_clone(), logvar)
    }

    /// The latent the diffusion model works on: the posterior mean (no
    /// sampling, so super-resolution stays deterministic) times the scaling
    /// factor.
    pub fn encode(&self, x: &Tensor) -> Tensor {
        self.posterior(x).0 * self.cfg.scaling_factor
    }

    /// Inverse of `encode`: takes a scaled latent, returns an image in
    /// roughly [-1, 1] (not clamped).
    pub fn decode(&self, z: &Tensor) -> Tensor {
        self.decode_unscaled(&(z.to_kind(self.decoder_kind()) / self.cfg.scaling_factor))
    }

    /// diffusers' `decode`: `post_quant_conv` then the decoder, on a latent
    /// that has *not* been multiplied by the scaling factor.
    pub fn decode_unscaled(&self, z: &Tensor) -> Tensor {
        let z = z.to_kind(self.decoder_kind());
        let z = match &self.post_quant_conv {
            Some(conv) => conv.forward(&z),
            None => z,
        };
        self.decoder.forward(&z)
    }
}
