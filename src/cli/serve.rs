//! `patchscaler serve`: a local web page to upscale images (see `crate::serve`).

use crate::device::DeviceArg;
use crate::serve::jobs::Retention;
use crate::serve::limits::Limits;
use crate::serve::{self, guard, ServeConfig};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
#[command(after_help = "Security: on loopback (the default) only this machine can connect; any other \
--bind needs a token on every /api call (--token, or one made up and printed in the page's URL). \
Every request must name this server in Host (DNS rebinding), and one sent with an Origin must come \
from its own page (other sites' forms are refused).")]
pub struct ServeArgs {
    /// Address to listen on; the default serves this machine only. Any
    /// other needs a token (see --token).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The secret every /api call must carry (`Authorization: Bearer`,
    /// `X-Patchscaler-Token` or `?token=`); at least 16 of A-Z a-z 0-9 . _ ~ -.
    /// A --bind beyond loopback without one gets a random 128-bit one,
    /// printed in the page's URL.
    #[arg(long, env = "PATCHSCALER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Port; 0 picks a free one. The page's URL is the first line on stdout.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Model folder (model.toml + weights). Default: the shipped model.
    #[arg(long, env = "PATCHSCALER_MODEL")]
    pub model: Option<PathBuf>,
    /// Memory budget in MiB per image, as `upscale --memory-limit` (default:
    /// 75 % of MemTotal): larger images are refused at upload.
    #[arg(long, value_name = "MiB", default_value_t = crate::app::memory::default_limit_mib(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit: u64,
    /// Largest file accepted, in MiB; a request declaring more than twice
    /// this (image and HR) plus 1 MiB is refused before its body is read.
    #[arg(long, default_value_t = 32, help_heading = "Limits")]
    pub max_upload_mib: u64,
    /// Images that may wait, all devices together, uploads being read
    /// included; more are refused (503) before their body is read.
    #[arg(long, default_value_t = 16, help_heading = "Limits")]
    pub max_queue: usize,
    /// Uploads read and checked at once; more are refused (503).
    #[arg(long, default_value_t = 4, help_heading = "Limits")]
    pub max_uploads: usize,
    /// Seconds a finished image stays on the server for the page to fetch.
    #[arg(long, default_value_t = 600, help_heading = "Limits")]
    pub keep_results: u64,
    /// Finished jobs kept at most; past it the oldest is dropped first.
    #[arg(long, default_value_t = 32, help_heading = "Limits")]
    pub max_results: usize,
    /// MiB of finished images (PNG) kept at most; past it the oldest go
    /// first (the newest stays, even alone above it).
    #[arg(long, value_name = "MiB", default_value_t = 512, help_heading = "Limits")]
    pub max_results_mib: u64,
    /// Connections open at once (each event stream holds one); more wait.
    #[arg(long, default_value_t = 64, help_heading = "Limits")]
    pub max_connections: usize,
    /// Seconds to send a request's head; also the longest a kept-alive
    /// connection may idle.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds, help_heading = "Limits")]
    pub header_timeout: Duration,
    /// Seconds a request body may pause.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = seconds, help_heading = "Limits")]
    pub body_timeout: Duration,
    /// Seconds to send a whole upload.
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = seconds, help_heading = "Limits")]
    pub upload_timeout: Duration,
    /// Devices to offer (cuda only where available).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["cpu", "cuda"])]
    pub devices: Vec<DeviceArg>,
    /// Intra-op CPU threads, at least 1 (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
    /// As `upscale --precision`, for every device of the list (auto: each
    /// device's own choice).
    #[arg(long, value_enum, default_value = "auto")]
    pub precision: crate::device::precision::PrecisionArg,
}

pub fn run(a: ServeArgs) -> Result<i32> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    if [a.max_upload_mib as usize, a.max_queue, a.max_uploads, a.max_results, a.max_connections].contains(&0) {
        bail!("--max-upload-mib, --max-queue, --max-uploads, --max-results and --max-connections must be at least 1");
    }
    let token = guard::token_for(a.bind, a.token).map_err(|e| anyhow!(e))?;
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
        retention: Retention {
            keep: Duration::from_secs(a.keep_results),
            max_count: a.max_results,
            max_bytes: (a.max_results_mib as usize).saturating_mul(1 << 20),
        },
        devices,
        precision: a.precision,
        limits: Limits {
            max_connections: a.max_connections,
            max_uploads: a.max_uploads,
            header_timeout: a.header_timeout,
            body_timeout: a.body_timeout,
            upload_timeout: a.upload_timeout,
        },
        token,
    })
}

/// Seconds (a fraction allowed), more than 0.
fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .and_then(|v| Duration::try_from_secs_f64(v).ok())
        .ok_or_else(|| format!("{s:?}: give seconds, more than 0"))
}
