//! `patchscaler serve`: a local web page to upscale images.
//!
//! - `jobs`: the per-device queue, job states, and what happens when a
//!   client goes away;
//! - `work`: one job through `upscale`'s own code (same bytes as the CLI);
//! - `http`: the routes, server-sent events;
//! - `upload`: an upload's limits and checks;
//! - `guard`: who may call (Host, Origin, the token beyond loopback);
//! - `limits`: the accept loop, connection cap and timeouts;
//! - `assets/`: the page (hand-written HTML, CSS, JS, embedded in the binary).
//!
//! The model is loaded once per device at start, by the thread that then
//! runs that device's jobs.

pub mod api_error;
pub mod guard;
pub mod http;
pub mod jobs;
pub mod limits;
pub mod state;
pub mod upload;
pub mod work;

use crate::app::load_model;
use crate::device::{device, DeviceArg};
use anyhow::{bail, Context, Result};
use jobs::{Jobs, Retention};
use limits::Limits;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What `patchscaler serve` was asked for.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    pub model: Option<PathBuf>,
    /// `--memory-limit` of `upscale`: bounds the input pixels per image.
    pub memory_limit_mib: u64,
    /// Bytes per uploaded file.
    pub max_upload_bytes: usize,
    /// Jobs waiting, all devices together.
    pub max_queue: usize,
    /// How long and how many finished jobs' images stay in memory.
    pub retention: Retention,
    /// Devices to offer; CUDA only where available.
    pub devices: Vec<DeviceArg>,
    pub precision: crate::device::precision::PrecisionArg,
    pub limits: Limits,
    /// Required on every /api call; `guard::token_for` makes one for a bind
    /// beyond loopback.
    pub token: Option<String>,
}

/// Loads the model on each device, binds, prints the page's URL as the
/// first line on stdout, and serves until Ctrl-C or SIGTERM.
pub fn run(cfg: ServeConfig) -> Result<i32> {
    let tmp = tempfile::Builder::new()
        .prefix("patchscaler-serve-")
        .tempdir()
        .context("cannot make the server's temporary folder")?;
    let (devices, jobs) = start_workers(&cfg, tmp.path())?;
    let model_name = cfg
        .model
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "default".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((cfg.bind, cfg.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", cfg.bind, cfg.port))?;
        let access = Arc::new(guard::Access {
            bound: listener.local_addr()?,
            token: cfg.token.clone(),
        });
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", access.page_url())?;
            out.flush()?;
        }
        eprintln!("{}", access.reach_line());
        let state = Arc::new(http::AppState {
            jobs: Arc::clone(&jobs),
            devices,
            max_upload_bytes: cfg.max_upload_bytes,
            memory_limit_mib: cfg.memory_limit_mib,
            model_name,
            uploads: Arc::new(tokio::sync::Semaphore::new(cfg.limits.max_uploads)),
            max_uploads: cfg.limits.max_uploads,
            upload_timeout: cfg.limits.upload_timeout,
            body_timeout: cfg.limits.body_timeout,
            access,
        });
        let sweeper = Arc::clone(&jobs);
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_secs(2));
            loop {
                t.tick().await;
                sweeper.sweep();
            }
        });
        let app = http::router(state);
        tokio::select! {
            _ = limits::serve(listener, app, cfg.limits) => {},
            _ = shutdown_signal() => eprintln!("stopping"),
        }
        anyhow::Ok(0)
    })?;
    // Open connections (event streams) end with the runtime; the temporary
    // folder goes with `tmp`.
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(tmp);
    Ok(code)
}

/// One worker thread per device, each loading its own model; waits until
/// every model is loaded. CUDA that fails to load is left out with a warning.
fn start_workers(cfg: &ServeConfig, tmp: &std::path::Path) -> Result<(Vec<DeviceArg>, Arc<Jobs>)> {
    let mut ready = Vec::new();
    let mut loaded = Vec::new();
    let mut waits = Vec::new();
    for &d in &cfg.devices {
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<Option<Arc<Jobs>>>();
        let model_dir = cfg.model.clone();
        let precision = cfg.precision;
        let tmp = tmp.to_path_buf();
        std::thread::Builder::new()
            .name(format!("serve-{}", jobs::device_name(d)))
            .spawn(move || {
                let model = device(d)
                    .and_then(|dev| load_model(model_dir.as_deref(), None, dev, crate::device::precision::resolve(precision, dev)));
                let model = match model {
                    Ok(m) => {
                        let _ = tx.send(Ok(()));
                        m
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}")));
                        return;
                    }
                };
                let Ok(Some(jobs)) = go_rx.recv() else { return };
                jobs.work_loop(d, move |req, handle| {
                    work::run_job(&model, req, &tmp, handle)
                });
            })
            .context("cannot start a worker thread")?;
        waits.push((d, rx, go_tx));
    }
    for (d, rx, go_tx) in waits {
        match rx.recv() {
            Ok(Ok(())) => {
                loaded.push(d);
                ready.push(go_tx);
            }
            Ok(Err(e)) if d == DeviceArg::Cuda => {
                eprintln!("warning: cuda left out: {e}");
            }
            Ok(Err(e)) => bail!("{e}"),
            Err(_) => bail!(
                "the {} worker stopped while loading the model",
                jobs::device_name(d)
            ),
        }
    }
    if loaded.is_empty() {
        bail!("no device could load the model");
    }
    let jobs = Jobs::new(&loaded, cfg.max_queue, cfg.retention);
    for go in ready {
        let _ = go.send(Some(Arc::clone(&jobs)));
    }
    Ok((loaded, jobs))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
