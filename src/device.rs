//! Where tensors live: the `--device` flag every computing subcommand takes,
//! the one clear error when CUDA is asked for and absent, what libtorch sees
//! (`patchscaler devices`), and the synchronisation a timing needs.
//!
//! CUDA kernels run asynchronously: a stopwatch read right after a launch
//! measures the launch, not the work. Every lap of a timed stage therefore
//! calls `synchronize` first.

use anyhow::{bail, Result};
use clap::ValueEnum;
use tch::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

/// The device of a `--device` flag; CUDA must be present.
pub fn device(d: DeviceArg) -> Result<Device> {
    match d {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceArg::Cuda => bail!(
            "--device cuda: no CUDA device is available (libtorch sees {} CUDA devices; `patchscaler devices` says what it sees)",
            tch::Cuda::device_count()
        ),
    }
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

/// Name, free and total bytes of CUDA device `i`, read through the CUDA
/// runtime that `libtorch_cuda` loaded (looked up at run time, so a build
/// without CUDA needs no CUDA headers or libraries).
fn cuda_properties(i: usize) -> Option<(String, usize, usize)> {
    type GetProps = unsafe extern "C" fn(*mut u8, i32) -> i32;
    type SetDevice = unsafe extern "C" fn(i32) -> i32;
    type MemInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;
    let sym = |name: &str| {
        let c = std::ffi::CString::new(name).ok()?;
        // SAFETY: dlsym on the global scope with a NUL-terminated name.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
        (!p.is_null()).then_some(p)
    };
    let props = sym("cudaGetDeviceProperties_v2").or_else(|| sym("cudaGetDeviceProperties"))?;
    // cudaDeviceProp begins with `char name[256]`; the buffer is far larger
    // than the struct of any CUDA version.
    let mut buf = vec![0u8; 16384];
    // SAFETY: the runtime's documented signatures; buf outlives the calls.
    unsafe {
        let get: GetProps = std::mem::transmute(props);
        if get(buf.as_mut_ptr(), i as i32) != 0 {
            return None;
        }
    }
    let name = String::from_utf8_lossy(&buf[..256])
        .trim_end_matches('\0')
        .split('\0')
        .next()
        .unwrap_or("")
        .to_string();
    let (mut free, mut total) = (0usize, 0usize);
    if let (Some(set), Some(mem)) = (sym("cudaSetDevice"), sym("cudaMemGetInfo")) {
        // SAFETY: as above.
        unsafe {
            let set: SetDevice = std::mem::transmute(set);
            let mem: MemInfo = std::mem::transmute(mem);
            if set(i as i32) == 0 {
                mem(&mut free, &mut total);
            }
        }
    }
    Some((name, free, total))
}

/// What libtorch sees, one line per device: `patchscaler devices`.
pub fn describe() -> Vec<String> {
    let mut lines = vec![format!(
        "cpu: {} intra-op threads, {} logical cores; {}",
        tch::get_num_threads(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        match cpu_features().join(", ") {
            f if f.is_empty() => "no AVX2/AVX-512/AMX".to_string(),
            f => f,
        }
    )];
    let n = tch::Cuda::device_count();
    if n == 0 {
        lines.push(format!(
            "cuda: none (libtorch_cuda {})",
            if cuda_linked() {
                "loaded"
            } else {
                "not loaded"
            }
        ));
    }
    for i in 0..n.max(0) as usize {
        let line = match cuda_properties(i) {
            Some((name, free, total)) => {
                format!(
                    "cuda:{i}: {name}, {:.1} GiB ({:.1} GiB free)",
                    total as f64 / 1073741824.0,
                    free as f64 / 1073741824.0
                )
            }
            None => format!("cuda:{i}: (properties unavailable)"),
        };
        lines.push(line);
    }
    lines.push(format!(
        "cudnn: {}",
        if tch::Cuda::cudnn_is_available() {
            "yes"
        } else {
            "no"
        }
    ));
    lines
}

/// Whether this process has libtorch's CUDA backend loaded.
pub fn cuda_linked() -> bool {
    let c = c"_ZN2at4cuda20getCurrentDevicePropertiesEv";
    // SAFETY: dlsym on the global scope with a NUL-terminated name.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) }.is_null()
        || std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("libtorch_cuda.so"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_works_and_describe_names_it() {
        assert_eq!(device(DeviceArg::Cpu).unwrap(), Device::Cpu);
        assert!(describe()[0].starts_with("cpu: "));
    }

    #[test]
    fn missing_cuda_is_one_clear_error() {
        if tch::Cuda::is_available() {
            return;
        }
        let e = device(DeviceArg::Cuda).unwrap_err().to_string();
        assert!(e.contains("no CUDA device"), "{e}");
    }

    #[test]
    #[ignore = "needs a CUDA device"]
    fn cuda_is_seen_with_its_name() {
        assert!(tch::Cuda::is_available());
        let d = describe();
        assert!(
            d.iter()
                .any(|l| l.starts_with("cuda:0: ") && !l.contains("unavailable")),
            "{d:?}"
        );
    }
}
