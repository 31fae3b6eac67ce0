//! The three kinds of LR made from an HR image: the evaluation protocols
//! of `eval --degrade` and `degrade`, and the kinds the training mix draws.

use super::config::DegradeConfig;
use super::pipeline::{bicubic_lr, degrade};
use anyhow::Result;
use clap::ValueEnum;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Per-file seed from the run seed and the file *name* (not its directory
/// or its position in a listing), so files can be processed in any order
/// or in parallel and still get the same LR. FNV-1a over the name, mixed
/// with the seed by a SplitMix64 finaliser; both are stable across Rust
/// versions, unlike `DefaultHasher`.
pub fn file_seed(seed: u64, file_name: &str) -> u64 {
    let fnv = file_name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut z = fnv ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How an LR is made from its HR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
pub enum Degradation {
    /// MATLAB bicubic by 1/scale (the classic benchmarks' protocol).
    Bicubic,
    /// One mild stage: slight blur, antialiased shrink, faint noise, JPEG
    /// 70..95 (an ordinary phone or web photo; `DegradeConfig::light`).
    Light,
    /// Real-ESRGAN's second-order degradation (heavily damaged photos).
    Realesrgan,
}

impl Degradation {
    /// The LR of `hr` (1, 3, H, W) with the default configs; bicubic draws
    /// nothing from `rng`.
    pub fn lr(self, hr: &Tensor, scale: i64, rng: &mut impl Rng) -> Result<Tensor> {
        self.lr_with(hr, scale, rng, &DegradeConfig::light(), &DegradeConfig::realesrgan())
    }

    /// [`Self::lr`] with the light and Real-ESRGAN configs given (a
    /// trainer's, which are part of its run identity).
    pub fn lr_with(
        self,
        hr: &Tensor,
        scale: i64,
        rng: &mut impl Rng,
        light: &DegradeConfig,
        realesrgan: &DegradeConfig,
    ) -> Result<Tensor> {
        match self {
            Degradation::Bicubic => bicubic_lr(hr, scale),
            Degradation::Light => degrade(hr, scale, rng, light),
            Degradation::Realesrgan => degrade(hr, scale, rng, realesrgan),
        }
    }

    /// The LR of the image named `file_name`, its generator seeded from
    /// (seed, name) by `file_seed`: the same LR whatever the order or the
    /// folder of the files, in `degrade` and `eval` alike.
    pub fn lr_of_file(self, hr: &Tensor, scale: i64, seed: u64, file_name: &str) -> Result<Tensor> {
        self.lr(hr, scale, &mut ChaCha8Rng::seed_from_u64(file_seed(seed, file_name)))
    }
}
