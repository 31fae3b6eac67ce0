//! `patchscaler serve`: a local web page to upscale images (see `crate::serve`).

use crate::device::DeviceArg;
use crate::serve::{self, ServeConfig};
use anyhow::{bail, Result};
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; the default serves this machine only.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port; 0 picks a free one. The page's URL is the first line on stdout.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Model folder (model.toml + weights). Default: the shipped model.
    #[arg(long, env = "PATCHSCALER_MODEL")]
    pub model: Option<PathBuf>,
    /// Memory budget in MiB per image, as `upscale --memory-limit` (default:
    /// 75 % of MemTotal): larger images are refused at upload.
    #[arg(long, value_name = "MiB", default_value_t = super::memory::default_limit_mib(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit: u64,
    /// Largest file accepted, in MiB.
    #[arg(long, default_value_t = 32)]
    pub max_upload_mib: u64,
    /// Images that may wait, all devices together; more are refused.
    #[arg(long, default_value_t = 16)]
    pub max_queue: usize,
    /// Seconds a finished image stays on the server for the page to fetch.
    #[arg(long, default_value_t = 600)]
    pub keep_results: u64,
    /// Devices to offer (cuda only where available).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["cpu", "cuda"])]
    pub devices: Vec<DeviceArg>,
    /// Intra-op CPU threads, at least 1 (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
}

pub fn run(a: ServeArgs) -> Result<i32> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    if a.max_upload_mib == 0 || a.max_queue == 0 {
        bail!("--max-upload-mib and --max-queue must be at least 1");
    }
    let mut devices: Vec<DeviceArg> = Vec::new();
    for d in a.devices {
        if d == DeviceArg::Cuda && !crate::device::cuda_available() {
            continue;
        }
        if !devices.contains(&d) {
            devices.push(d);
        }
    }
    if devices.is_empty() {
        bail!("--devices: none of them is available (no CUDA device here; add cpu)");
    }
    serve::run(ServeConfig {
        bind: a.bind,
        port: a.port,
        model: a.model,
        memory_limit_mib: a.memory_limit,
        max_upload_bytes: (a.max_upload_mib as usize).saturating_mul(1 << 20),
        max_queue: a.max_queue,
        keep_results: Duration::from_secs(a.keep_results),
        devices,
    })
}
