//! Where tensors live: the `--device` flag every computing subcommand takes,
//! the one clear error when CUDA is asked for and absent, what this process
//! found (`patchscaler devices`), and the synchronisation a timing needs.
//!
//! CUDA kernels run asynchronously: a stopwatch read right after a launch
//! measures the launch, not the work. Every lap of a timed stage therefore
//! calls `synchronize` first.

pub mod cuda;
pub mod precision;
mod cudart;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use tch::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

/// The device of a `--device` flag. CUDA loads libtorch's CUDA backend
/// first (`cuda::load`) and must then see a device.
pub fn device(d: DeviceArg) -> Result<Device> {
    match d {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Cuda => {
            let backend = cuda::load().context("--device cuda")?;
            if tch::Cuda::is_available() {
                return Ok(Device::Cuda(0));
            }
            bail!(
                "--device cuda: no CUDA device is available ({}; {}); `patchscaler devices` says what was found",
                backend.describe(),
                cudart::no_device_reason().unwrap_or_else(|| "libtorch sees 0 devices".into())
            )
        }
    }
}

/// Whether CUDA can be offered where nobody asked for it by name (`serve`'s
/// default devices): only with an NVIDIA driver, so that a CPU machine
/// never spends the load of libtorch_cuda on a question.
pub fn cuda_available() -> bool {
    cuda::driver_present() && cuda::load().is_ok() && tch::Cuda::is_available()
}

/// Waits for the device's queued work, so a following clock read is true.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// CPU features that decide the fast precision on this machine.
pub fn cpu_features() -> Vec<&'static str> {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let line = flags.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| line.split_whitespace().any(|w| w == f);
    ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
        .into_iter()
        .filter(|f| has(f))
        .collect()
}

/// What this process found, one line per item: `patchscaler devices`. It
/// loads the CUDA backend (that is the question) and says why not when it
/// cannot.
pub fn describe() -> Vec<String> {
    let mut lines = vec![format!(
        "cpu: {} intra-op threads, {} logical cores; {}; precision auto: {}",
        tch::get_num_threads(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        match cpu_features().join(", ") {
            f if f.is_empty() => "no AVX2/AVX-512/AMX".to_string(),
            f => f,
        },
        precision::auto(Device::Cpu)
    )];
    lines.push(format!("libtorch: {}", cuda::libtorch_dir().map_or("(not found)".into(), |d| d.display().to_string())));
    let backend = match cuda::load() {
        Ok(b) => b,
        Err(e) => {
            lines.push(format!("cuda: not loaded: {e:#}"));
            return lines;
        }
    };
    let n = tch::Cuda::device_count();
    if n == 0 {
        let why = cudart::no_device_reason().unwrap_or_else(|| "libtorch sees 0 devices".into());
        lines.push(format!("cuda: {}; no device: {why}", backend.describe()));
    } else {
        lines.push(format!("cuda: {}", backend.describe()));
    }
    for i in 0..n.max(0) as usize {
        let auto = precision::auto(Device::Cuda(i));
        lines.push(match cudart::properties(i) {
            Some(p) => format!(
                "cuda:{i}: {}, {:.1} GiB ({:.1} GiB free); precision auto: {auto}",
                p.name,
                p.total as f64 / 1073741824.0,
                p.free as f64 / 1073741824.0,
            ),
            None => format!("cuda:{i}: (properties unavailable); precision auto: {auto}"),
        });
    }
    lines.push(format!("cudnn: {}", if tch::Cuda::cudnn_is_available() { "yes" } else { "no" }));
    lines
}

/// Compute capability (major, minor) of CUDA device `i`.
pub fn compute_capability(i: usize) -> Option<(i32, i32)> {
    cudart::compute_capability(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_works_and_describe_names_it() {
        assert_eq!(device(DeviceArg::Cpu).unwrap(), Device::Cpu);
        let d = describe();
        assert!(d[0].starts_with("cpu: ") && d[0].contains("precision auto: "), "{d:?}");
        assert!(d.iter().any(|l| l.starts_with("cuda")), "{d:?}");
    }

    #[test]
    fn missing_cuda_is_one_clear_error() {
        if cuda_available() {
            return;
        }
        let e = format!("{:#}", device(DeviceArg::Cuda).unwrap_err());
        assert!(e.starts_with("--device cuda: "), "{e}");
        assert!(e.contains("no CUDA device") || e.contains("libtorch_cuda") || e.contains(".so"), "{e}");
    }

    #[test]
    #[ignore = "needs a CUDA device"]
    fn cuda_is_seen_with_its_name() {
        assert!(cuda_available());
        let d = describe();
        assert!(
            d.iter()
                .any(|l| l.starts_with("cuda:0: ") && !l.contains("unavailable")),
            "{d:?}"
        );
    }
}
