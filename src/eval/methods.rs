//! The methods an evaluation compares on the same LR: bicubic, the GRM's
//! coarse result alone, PatchScaler (PGS), and uniform sampling (every patch
//! at the hardest group's tau and steps, the paper's baseline).

use crate::model::Model;
use crate::pipeline::{self, SamplingOptions, Upscaled};
use crate::resize::bicubic::upsample_bicubic;
use anyhow::Result;
use std::time::Instant;
use tch::{Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Bicubic,
    Coarse,
    PatchScaler,
    Uniform,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Bicubic => "bicubic",
            Method::Coarse => "coarse",
            Method::PatchScaler => "patchscaler",
            Method::Uniform => "uniform",
        }
    }
}

/// One method's output on one image.
pub struct Output {
    /// (1,3,sH,sW) in [0,1], on the CPU.
    pub sr: Tensor,
    /// Wall time, including the copy back to the CPU (which also waits for
    /// any queued GPU work, so GPU times are complete).
    pub seconds: f64,
    /// The pipeline's record (Q-map, groups, stage times) for the diffusion methods.
    pub upscaled: Option<Upscaled>,
}

/// Runs `method` on `lr` (1,3,h,w). `opts` is the sampling plan to use:
/// the caller passes the uniform plan for [`Method::Uniform`].
pub fn run(method: Method, model: &Model, lr: &Tensor, opts: &SamplingOptions) -> Result<Output> {
    let start = Instant::now();
    let s = model.config.scale;
    let (sr, upscaled) = match method {
        Method::Bicubic => {
            let lr = lr.to_device(model.device);
            let (h, w) = (lr.size()[2], lr.size()[3]);
            (upsample_bicubic(&lr, (h * s) as usize, (w * s) as usize)?.clamp(0.0, 1.0), None)
        }
        Method::Coarse => (pipeline::coarse_image(model, lr, opts)?, None),
        Method::PatchScaler | Method::Uniform => {
            let up = pipeline::upscale(model, lr, opts)?;
            (up.sr.shallow_clone(), Some(up))
        }
    };
    let sr = sr.to_device(Device::Cpu);
    Ok(Output { sr, seconds: start.elapsed().as_secs_f64(), upscaled })
}
