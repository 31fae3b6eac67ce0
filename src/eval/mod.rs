//! Evaluation and benchmarking: what `patchscaler eval` and `patchscaler
//! bench` measure, kept apart from their command lines so the numbers can be
//! produced and tested without a process around them.
//!
//! The conventions are the SR literature's (BasicSR): HR cropped to the LR
//! size times the scale, 8-bit outputs, PSNR / SSIM on BT.601 luma with a
//! `scale` px border ignored, NIQE with the authors' pristine model.

pub mod bench_run;
pub mod compare;
pub mod figure;
pub mod flops;
pub mod memory;
pub mod methods;
pub mod pairs;
pub mod report;
pub mod score;
pub mod synth;
pub mod tradeoff;
pub mod tradeoff_plot;

pub use methods::Method;
pub use pairs::{Degradation, Pair, PairSource};
pub use score::Score;
