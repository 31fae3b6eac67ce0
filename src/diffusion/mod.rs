//! The diffusion process of Patch-DiT: the beta schedule, DiT's timestep
//! respacing, and the DDIM (eta = 0) sampler that starts part-way at tau.

pub mod ddim;
pub mod respace;
pub mod schedule;

pub use ddim::{q_sample, DdimSampler, DdimStep};
pub use respace::space_timesteps;
pub use schedule::{BetaSchedule, DiffusionConfig};
