//! `--precision auto|f32|bf16` of the commands that run a model, and the rule
//! `auto` follows.
//!
//! CPU: bf16 where the CPU does it natively and it was measured faster;
//! f32 elsewhere. CUDA: bf16 from compute capability 8.0 (bf16 tensor cores),
//! f32 before. The rule reads the CPU's flags, never a clock: a timing would
//! make the default, and with it the bytes a seed gives, depend on the load.
//! The figures quoted are in the README ("Precision").
//!
//! `ONEDNN_MAX_CPU_ISA` counts: capped below bf16, oneDNN emulates it, so
//! the rule does too (and the emulated case can be tried on any machine).

use crate::autocast::Precision;
use clap::ValueEnum;
use std::fmt;
use tch::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionArg {
    /// bf16 where it is native and faster (CPUs with AMX or AVX-512 BF16,
    /// CUDA from compute capability 8.0), f32 elsewhere; `patchscaler
    /// devices` says which.
    Auto,
    /// float32 everywhere.
    F32,
    /// bf16 weights for the matmuls and convolutions.
    Bf16,
}

/// How this CPU runs bf16 matmuls and convolutions (oneDNN's kernels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuBf16 {
    /// AMX tiles (`amx_bf16`).
    Amx,
    /// AVX-512 BF16 dot products, no AMX.
    Avx512,
    /// Neither: every operation converts to float32 and back.
    Emulated,
}

/// A precision and the measured reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub precision: Precision,
    pub why: String,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.precision {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        };
        write!(f, "{p} ({})", self.why)
    }
}

/// This CPU's class, with `ONEDNN_MAX_CPU_ISA` applied.
pub fn cpu_bf16() -> CpuBf16 {
    classify(&crate::device::cpu_features(), std::env::var("ONEDNN_MAX_CPU_ISA").ok().as_deref())
}

fn classify(features: &[&str], max_isa: Option<&str>) -> CpuBf16 {
    let isa = max_isa.map(str::to_ascii_uppercase).filter(|i| !matches!(i.as_str(), "" | "ALL" | "DEFAULT"));
    let allows = |needles: &[&str]| isa.as_ref().is_none_or(|i| needles.iter().any(|n| i.contains(n)));
    if features.contains(&"amx_bf16") && allows(&["AMX"]) {
        CpuBf16::Amx
    } else if features.contains(&"avx512_bf16") && allows(&["AMX", "BF16", "FP16", "AVX10"]) {
        CpuBf16::Avx512
    } else {
        CpuBf16::Emulated
    }
}

/// Measured on each class of CPU (README, "Precision": the commands, the
/// sizes, and why thumbnails and training are exceptions).
const AMX_WHY: &str = "AMX: bf16 measured 1.6x faster than f32";
const AVX512_WHY: &str = "AVX-512 BF16 without AMX: bf16 measured 1.1-1.3x faster than f32 on photos";
const EMULATED_WHY: &str = "no native bf16 (no AVX-512 BF16, no AMX): emulated, measured 2x to over 50x the time of f32";

/// What `--precision auto` runs on `device`.
pub fn auto(device: Device) -> Choice {
    let (precision, why) = match device {
        Device::Cpu => match cpu_bf16() {
            CpuBf16::Amx => (Precision::Bf16, AMX_WHY.to_string()),
            CpuBf16::Avx512 => (Precision::Bf16, AVX512_WHY.to_string()),
            CpuBf16::Emulated => (Precision::F32, EMULATED_WHY.to_string()),
        },
        Device::Cuda(i) => match crate::device::compute_capability(i) {
            Some((major, minor)) if major >= 8 => {
                (Precision::Bf16, format!("compute capability {major}.{minor}: bf16 tensor cores"))
            }
            Some((major, minor)) => (Precision::F32, format!("compute capability {major}.{minor}: no bf16 tensor cores")),
            None => (Precision::F32, "compute capability unknown".into()),
        },
        _ => (Precision::F32, "not a CPU or CUDA device".into()),
    };
    Choice { precision, why }
}

/// The precision a run uses. An explicit bf16 on a CPU that emulates it
/// runs as asked, after one warning with the reason.
pub fn resolve(arg: PrecisionArg, device: Device) -> Precision {
    match arg {
        PrecisionArg::Auto => auto(device).precision,
        PrecisionArg::F32 => Precision::F32,
        PrecisionArg::Bf16 => {
            warn_if_emulated(device);
            Precision::Bf16
        }
    }
}

/// One line on stderr, once per process, when bf16 on `device` is emulated.
pub fn warn_if_emulated(device: Device) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if device == Device::Cpu && cpu_bf16() == CpuBf16::Emulated {
        ONCE.call_once(|| eprintln!("warning: --precision bf16 on this CPU: {EMULATED_WHY}; --precision auto picks f32 here"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_class_follows_the_flags_and_onednns_cap() {
        let amx = ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"];
        assert_eq!(classify(&amx, None), CpuBf16::Amx);
        assert_eq!(classify(&amx, Some("avx512_core_bf16")), CpuBf16::Avx512);
        assert_eq!(classify(&amx, Some("AVX2")), CpuBf16::Emulated);
        assert_eq!(classify(&amx, Some("ALL")), CpuBf16::Amx);
        assert_eq!(classify(&["avx2", "avx512f", "avx512_bf16"], None), CpuBf16::Avx512);
        assert_eq!(classify(&["avx2", "avx512f", "avx512_bf16"], Some("AVX512_CORE_AMX")), CpuBf16::Avx512);
        assert_eq!(classify(&["avx2"], None), CpuBf16::Emulated);
        assert_eq!(classify(&[], Some("AVX512_CORE_AMX")), CpuBf16::Emulated);
    }

    #[test]
    fn explicit_precisions_are_kept_and_auto_says_why() {
        assert_eq!(resolve(PrecisionArg::F32, Device::Cpu), Precision::F32);
        assert_eq!(resolve(PrecisionArg::Bf16, Device::Cpu), Precision::Bf16);
        let c = auto(Device::Cpu);
        assert_eq!(resolve(PrecisionArg::Auto, Device::Cpu), c.precision);
        assert!(c.to_string().contains("measured"), "{c}");
    }
}
