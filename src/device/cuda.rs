//! libtorch's CUDA backend, loaded only when a CUDA device is asked for.
//!
//! Why at run time: `libtorch_cuda.so` needs cuBLAS, cuDNN, NCCL, cuFFT,
//! cuSPARSE and more (2.7 GB of the full venv). Linked into the binary, every
//! CPU command needed them. Loaded here with RTLD_GLOBAL, its static
//! initialisers register the CUDA hooks and kernels just as they would at
//! start-up, provided nothing asked libtorch about CUDA before: libtorch
//! keeps its first answer. So every CUDA question in this crate starts with
//! `load`, and `Backend::runtime` comes from the hooks themselves
//! (`csrc/cuda_probe.cpp`), which proves the registration without a GPU.
//!
//! Where it looks: `PATCHSCALER_CUDA_LIB` (a folder) when set; else the
//! folder of the libtorch_cpu.so this process runs (the venv's torch/lib,
//! or the bundle's lib/) if it has the file; else the loader's own search
//! (LD_LIBRARY_PATH, the binary's `$ORIGIN` rpath, the system). The file is
//! opened by its real path, so its own `$ORIGIN/../../nvidia/...` rpath
//! finds the CUDA libraries of the venv it came from.

use anyhow::{anyhow, Result};
use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const LIB: &str = "libtorch_cuda.so";
/// A folder that holds libtorch_cuda.so: where to take CUDA from.
pub const ENV: &str = "PATCHSCALER_CUDA_LIB";

extern "C" {
    fn ps_cuda_hooks_runtime_version() -> std::ffi::c_long;
}

/// libtorch_cuda, loaded and registered.
#[derive(Debug)]
pub struct Backend {
    /// The file loaded (its soname when the loader found it).
    pub path: PathBuf,
    /// The CUDA runtime libtorch_cuda was built with: 13000 is 13.0.
    pub runtime: i64,
}

impl Backend {
    pub fn describe(&self) -> String {
        format!(
            "{} loaded (CUDA runtime {}.{})",
            self.path.display(),
            self.runtime / 1000,
            self.runtime % 1000 / 10
        )
    }
}

static BACKEND: OnceLock<Result<Backend, String>> = OnceLock::new();

/// Loads the backend once per process; later calls return the first result.
pub fn load() -> Result<&'static Backend> {
    BACKEND.get_or_init(try_load).as_ref().map_err(|e| anyhow!("{e}"))
}

/// Whether an NVIDIA driver is installed (kernel module or device nodes).
pub fn driver_present() -> bool {
    ["/proc/driver/nvidia/version", "/dev/nvidiactl"].iter().any(|p| Path::new(p).exists())
}

/// The folder of the libtorch_cpu.so mapped into this process, resolved.
pub fn libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let path = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.ends_with("/libtorch_cpu.so"))?;
    Path::new(path).parent()?.canonicalize().ok()
}

/// The file to open; `None` stands for the loader's own search, used only
/// when libtorch's folder has none (a copy found there that fails to load
/// names its missing library; another found elsewhere would hide that).
fn candidate() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(ENV) {
        return Some(Path::new(&dir).join(LIB));
    }
    libtorch_dir().map(|d| d.join(LIB)).filter(|p| p.exists())
}

fn try_load() -> Result<Backend, String> {
    let candidate = candidate();
    let file = match &candidate {
        Some(p) => p.canonicalize().unwrap_or_else(|_| p.clone()),
        None => PathBuf::from(LIB),
    };
    // SAFETY: runs libtorch_cuda's static initialisers, which register with
    // the libtorch_cpu already loaded; both come from one wheel.
    let lib = unsafe { Library::open(Some(&file), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| {
        let place = match candidate {
            Some(_) => file.display().to_string(),
            None => "the library path (LD_LIBRARY_PATH, the bundle's lib/)".into(),
        };
        format!(
            "cannot load libtorch's CUDA backend from {place}: {e}. The CUDA libraries come with the full set-up \
             (scripts/setup.sh --cuda) or, for the release bundle, in its lib/ or in {ENV} (README, \"The release bundle\")"
        )
    })?;
    // Kept for the whole process: its registrations point into it.
    let _ = lib.into_raw();
    // SAFETY: a C function of our shim that catches C++ exceptions.
    let runtime = unsafe { ps_cuda_hooks_runtime_version() } as i64;
    if runtime < 0 {
        return Err(format!(
            "{} loaded, but libtorch had answered a CUDA question before and keeps its CPU-only hooks (a bug: ask through device::cuda::load first)",
            file.display()
        ));
    }
    Ok(Backend { path: file, runtime })
}
