//! Batches of random crops, decoded on background threads.
//!
//! Batch k is drawn from its own random stream (ChaCha stream k of the seed),
//! so its content depends only on (seed, k) and the file list, never on which
//! worker made it or when. Workers take batch numbers from a shared counter
//! and the receiving side puts batches back in order; `skip_to(k)` restarts
//! the workers at k, which is how a resumed run continues the same sequence.

use super::cache::ImageCache;
use super::crop::random_crop;
use super::data::ImageFolder;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tch::Tensor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CropConfig {
    /// Side of the square crops, in pixels.
    pub size: u32,
    pub batch: usize,
    /// Range of the random image scale factor (e.g. (0.5, 1.0) for
    /// down-scaled wallpapers); `None` keeps the native resolution.
    pub rescale: Option<(f64, f64)>,
    pub flips: bool,
    pub rot90: bool,
    pub seed: u64,
    /// Decoding threads.
    pub workers: usize,
    /// Finished batches that may wait in the queue.
    pub prefetch: usize,
    /// Budget of the decoded-image cache.
    pub cache_mib: usize,
}

impl CropConfig {
    /// Full augmentation, two workers, a 512 MiB cache.
    pub fn new(size: u32, batch: usize, seed: u64) -> Self {
        CropConfig { size, batch, rescale: None, flips: true, rot90: true, seed, workers: 2, prefetch: 4, cache_mib: 512 }
    }
}

/// What the workers share.
struct Shared {
    files: Vec<PathBuf>,
    config: CropConfig,
    cache: Mutex<ImageCache>,
    next_batch: AtomicU64,
    stop: AtomicBool,
}

pub struct CropLoader {
    shared: Arc<Shared>,
    running: Option<Running>,
    /// Batches received ahead of their turn.
    pending: BTreeMap<u64, Result<Tensor>>,
    next: u64,
}

struct Running {
    rx: Receiver<(u64, Result<Tensor>)>,
    workers: Vec<JoinHandle<()>>,
}

impl CropLoader {
    pub fn new(folder: &ImageFolder, config: CropConfig) -> Result<Self> {
        if folder.is_empty() || config.size == 0 || config.batch == 0 {
            bail!("crop loader needs images, a crop size and a batch size (got {config:?})");
        }
        let shared = Shared {
            files: folder.files().to_vec(),
            cache: Mutex::new(ImageCache::new(config.cache_mib)),
            config,
            next_batch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        Ok(CropLoader { shared: Arc::new(shared), running: None, pending: BTreeMap::new(), next: 0 })
    }

    /// The number of the batch `next()` returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Continues the sequence at batch `k`, as if `k` batches had been taken.
    pub fn skip_to(&mut self, k: u64) {
        self.stop_workers();
        self.pending.clear();
        self.next = k;
    }

    fn start_workers(&mut self) {
        let config = &self.shared.config;
        let (tx, rx) = sync_channel(config.prefetch.max(1));
        self.shared.next_batch.store(self.next, Ordering::SeqCst);
        self.shared.stop.store(false, Ordering::SeqCst);
        let workers = (0..config.workers.max(1))
            .map(|_| {
                let (shared, tx) = (self.shared.clone(), tx.clone());
                std::thread::spawn(move || {
                    while !shared.stop.load(Ordering::SeqCst) {
                        let k = shared.next_batch.fetch_add(1, Ordering::SeqCst);
                        if tx.send((k, make_batch(&shared, k))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        self.running = Some(Running { rx, workers });
    }

    fn stop_workers(&mut self) {
        if let Some(running) = self.running.take() {
            self.shared.stop.store(true, Ordering::SeqCst);
            drop(running.rx); // unblocks workers waiting to send
            for worker in running.workers {
                let _ = worker.join();
            }
        }
    }
}

impl Iterator for CropLoader {
    type Item = Result<Tensor>;

    fn next(&mut self) -> Option<Result<Tensor>> {
        if self.running.is_none() {
            self.start_workers();
        }
        let want = self.next;
        while !self.pending.contains_key(&want) {
            let received = self.running.as_ref()?.rx.recv();
            match received {
                Ok((k, batch)) => {
                    self.pending.insert(k, batch);
                }
                Err(_) => return Some(Err(anyhow::anyhow!("crop loader workers stopped"))),
            }
        }
        self.next += 1;
        self.pending.remove(&want)
    }
}

impl Drop for CropLoader {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// How many files a sample may try before the batch fails.
const MAX_ATTEMPTS: usize = 16;

fn make_batch(shared: &Shared, k: u64) -> Result<Tensor> {
    let config = &shared.config;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(k);
    let mut data = Vec::with_capacity(config.batch * 3 * (config.size * config.size) as usize);
    for _ in 0..config.batch {
        let image = (0..MAX_ATTEMPTS)
            .find_map(|_| decoded(shared, rng.random_range(0..shared.files.len())))
            .with_context(|| format!("batch {k}: {MAX_ATTEMPTS} images in a row could not be decoded"))?;
        data.extend(random_crop(&image, config, &mut rng));
    }
    let s = config.size as i64;
    Ok(Tensor::from_slice(&data).view([config.batch as i64, 3, s, s]))
}

/// The decoded image, from the cache when possible; `None` (with a warning)
/// when the file cannot be decoded, so the caller draws another.
fn decoded(shared: &Shared, index: usize) -> Option<Arc<RgbImage>> {
    if let Some(image) = shared.cache.lock().ok()?.get(index) {
        return Some(image);
    }
    let path = &shared.files[index];
    match image::open(path) {
        Ok(image) => {
            let image = Arc::new(image.into_rgb8());
            shared.cache.lock().ok()?.insert(index, image.clone());
            Some(image)
        }
        Err(e) => {
            tracing::warn!("skipping {}: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
