//! The diffusion process of Patch-DiT: the beta schedule, DiT's timestep
//! respacing, the DDIM (eta = 0) sampler that starts part-way at tau, and
//! the target the denoiser is trained on (eps, x0 or v), which sampling and
//! training must agree on.

pub mod ddim;
pub mod prediction;
pub mod respace;
pub mod schedule;

pub use ddim::{q_sample, DdimSampler, DdimStep};
pub use prediction::Prediction;
pub use respace::space_timesteps;
pub use schedule::{BetaSchedule, DiffusionConfig};
