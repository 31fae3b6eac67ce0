//! Batches of random crops, decoded on background threads.
//!
//! Batch k is drawn from its own random stream (ChaCha stream k of the seed),
//! so its content depends only on (seed, k) and the file list, never on which
//! worker made it or when. Workers take batch numbers from a shared counter
//! and the receiving side puts batches back in order; `skip_to(k)` restarts
//! the workers at k, which is how a resumed run continues the same sequence.

use super::cache::ImageCache;
pub use super::crop::CropConfig;
use super::crop::random_crop;
use super::data::ImageFolder;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tch::Tensor;


/// What the crop workers share: everything batch k depends on.
pub struct CropSource {
    files: Vec<PathBuf>,
    config: CropConfig,
    cache: Mutex<ImageCache>,
}

impl CropSource {
    /// Crop batch number `k`; any thread, any order, same tensor.
    pub fn batch(&self, k: u64) -> Result<Tensor> {
        make_batch(self, k)
    }
}

/// Items 0, 1, 2, ... of `make(k)`, made ahead on `workers` threads and
/// handed out in order. Each item depends only on k, so the sequence does
/// not depend on the number of workers or their timing, and `skip_to(k)`
/// continues it exactly (how a resumed run picks up its data).
pub struct OrderedLoader<T: Send + 'static> {
    make: Arc<dyn Fn(u64) -> Result<T> + Send + Sync>,
    workers: usize,
    prefetch: usize,
    running: Option<Running<T>>,
    /// Items received ahead of their turn.
    pending: BTreeMap<u64, Result<T>>,
    next: u64,
}

struct Running<T> {
    rx: Receiver<(u64, Result<T>)>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> OrderedLoader<T> {
    pub fn new(
        make: Arc<dyn Fn(u64) -> Result<T> + Send + Sync>,
        workers: usize,
        prefetch: usize,
    ) -> Self {
        OrderedLoader {
            make,
            workers: workers.max(1),
            prefetch: prefetch.max(1),
            running: None,
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    /// The number of the item `next()` returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Continues the sequence at item `k`, as if `k` items had been taken.
    pub fn skip_to(&mut self, k: u64) {
        self.stop_workers();
        self.pending.clear();
        self.next = k;
    }

    fn start_workers(&mut self) {
        // Enough room that every worker can finish its item while the
        // consumer waits for an earlier one.
        let (tx, rx) = sync_channel(self.prefetch.max(self.workers));
        let counter = Arc::new(AtomicU64::new(self.next));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..self.workers)
            .map(|_| {
                let (make, tx, counter, stop) =
                    (self.make.clone(), tx.clone(), counter.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let k = counter.fetch_add(1, Ordering::SeqCst);
                        if tx.send((k, make(k))).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        self.running = Some(Running { rx, stop, workers });
    }

    fn stop_workers(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.store(true, Ordering::SeqCst);
            drop(running.rx); // unblocks workers waiting to send
            for worker in running.workers {
                let _ = worker.join();
            }
        }
    }
}

impl<T: Send + 'static> Iterator for OrderedLoader<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.running.is_none() {
            self.start_workers();
        }
        let want = self.next;
        while !self.pending.contains_key(&want) {
            let received = self.running.as_ref()?.rx.recv();
            match received {
                Ok((k, item)) => {
                    self.pending.insert(k, item);
                }
                Err(_) => return Some(Err(anyhow::anyhow!("loader workers stopped"))),
            }
        }
        self.next += 1;
        self.pending.remove(&want)
    }
}

impl<T: Send + 'static> Drop for OrderedLoader<T> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// Batches of random crops: an `OrderedLoader` over `CropSource::batch`.
pub struct CropLoader {
    source: Arc<CropSource>,
    inner: OrderedLoader<Tensor>,
}

impl CropLoader {
    pub fn new(folder: &ImageFolder, config: CropConfig) -> Result<Self> {
        let source = Arc::new(Self::source(folder, config)?);
        let (workers, prefetch) = (source.config.workers, source.config.prefetch);
        let s = source.clone();
        let inner = OrderedLoader::new(Arc::new(move |k| s.batch(k)), workers, prefetch);
        Ok(CropLoader { source, inner })
    }

    /// The shared crop maker alone, for loaders that build on crop batches.
    pub fn source(folder: &ImageFolder, config: CropConfig) -> Result<CropSource> {
        if folder.is_empty() || config.size == 0 || config.batch == 0 {
            bail!("crop loader needs images, a crop size and a batch size (got {config:?})");
        }
        Ok(CropSource {
            files: folder.files().to_vec(),
            cache: Mutex::new(ImageCache::new(config.cache_mib)),
            config,
        })
    }

    pub fn config(&self) -> &CropConfig {
        &self.source.config
    }

    /// The number of the batch `next()` returns.
    pub fn position(&self) -> u64 {
        self.inner.position()
    }

    /// Continues the sequence at batch `k`, as if `k` batches had been taken.
    pub fn skip_to(&mut self, k: u64) {
        self.inner.skip_to(k)
    }
}

impl Iterator for CropLoader {
    type Item = Result<Tensor>;

    fn next(&mut self) -> Option<Result<Tensor>> {
        self.inner.next()
    }
}

/// How many files a sample may try before the batch fails.
const MAX_ATTEMPTS: usize = 16;

fn make_batch(shared: &CropSource, k: u64) -> Result<Tensor> {
    let config = &shared.config;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(k);
    let mut data = Vec::with_capacity(config.batch * 3 * (config.size * config.size) as usize);
    for _ in 0..config.batch {
        let image = (0..MAX_ATTEMPTS)
            .find_map(|_| decoded(shared, rng.random_range(0..shared.files.len())))
            .with_context(|| {
                format!("batch {k}: {MAX_ATTEMPTS} images in a row could not be decoded")
            })?;
        data.extend(random_crop(&image, config, &mut rng));
    }
    let s = config.size as i64;
    Ok(Tensor::from_slice(&data).view([config.batch as i64, 3, s, s]))
}

/// The decoded image, from the cache when possible; `None` (with a warning)
/// when the file cannot be decoded, so the caller draws another.
fn decoded(shared: &CropSource, index: usize) -> Option<Arc<RgbImage>> {
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
