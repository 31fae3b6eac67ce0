//! A least-recently-used cache of decoded images, bounded in bytes.
//!
//! Decoding a 4K JPEG takes longer than cutting many crops out of it, and on
//! a two-core machine decoding is what the model would wait for. Keeping the
//! last few decoded images lets consecutive crops of the same file reuse them.
//! The cache only saves time: what a batch contains never depends on it.

use image::RgbImage;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub struct ImageCache {
    budget: usize,
    used: usize,
    images: HashMap<usize, Arc<RgbImage>>,
    /// Keys from least to most recently used.
    order: VecDeque<usize>,
}

impl ImageCache {
    pub fn new(budget_mib: usize) -> Self {
        ImageCache { budget: budget_mib << 20, used: 0, images: HashMap::new(), order: VecDeque::new() }
    }

    pub fn get(&mut self, key: usize) -> Option<Arc<RgbImage>> {
        let image = self.images.get(&key)?.clone();
        self.touch(key);
        Some(image)
    }

    /// Stores an image, evicting the least recently used ones to stay within
    /// the budget. An image larger than the whole budget is not kept.
    pub fn insert(&mut self, key: usize, image: Arc<RgbImage>) {
        let size = image.as_raw().len();
        if size > self.budget || self.images.contains_key(&key) {
            return;
        }
        while self.used + size > self.budget {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(evicted) = self.images.remove(&old) {
                self.used -= evicted.as_raw().len();
            }
        }
        self.used += size;
        self.images.insert(key, image);
        self.order.push_back(key);
    }

    pub fn bytes_used(&self) -> usize {
        self.used
    }

    fn touch(&mut self, key: usize) {
        if let Some(at) = self.order.iter().position(|&k| k == key) {
            self.order.remove(at);
        }
        self.order.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(mib: u32) -> Arc<RgbImage> {
        // 1 MiB = 1024 x 342 RGB pixels, rounded up a little.
        Arc::new(RgbImage::new(1024, 342 * mib))
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut cache = ImageCache::new(3);
        cache.insert(0, image(1));
        cache.insert(1, image(1));
        assert!(cache.get(0).is_some()); // 1 is now the oldest
        cache.insert(2, image(1));
        assert!(cache.get(1).is_none(), "least recently used image evicted");
        assert!(cache.get(0).is_some() && cache.get(2).is_some());
        assert!(cache.bytes_used() <= 3 << 20);
        cache.insert(9, image(4));
        assert!(cache.get(9).is_none(), "an image over the budget is not kept");
    }
}
