//! Progress from inside one upscale: a large image spends minutes in the
//! denoising loop, so the caller hears about every stage and every Patch-DiT
//! call rather than only about finished images.

use std::sync::Arc;

/// One report: `done` of `total` work units finished, the last in `stage`.
/// A stage is one unit and so is each Patch-DiT call (one denoising step of
/// one batch of patches); `total` grows once the number of calls is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub stage: String,
    pub done: u64,
    pub total: u64,
}

/// The caller's progress callback (shared, so options stay `Clone`).
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(&Progress) + Send + Sync>);

impl ProgressFn {
    pub fn new(f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// Counts units and calls the callback, if there is one.
pub(crate) struct Tracker {
    report: Option<ProgressFn>,
    done: u64,
    total: u64,
}

impl Tracker {
    pub(crate) fn new(report: Option<ProgressFn>, total: u64) -> Self {
        Self { report, done: 0, total }
    }
    pub(crate) fn add_total(&mut self, units: u64) {
        self.total += units;
    }
    pub(crate) fn tick(&mut self, stage: &str) {
        self.done += 1;
        self.total = self.total.max(self.done);
        if let Some(f) = &self.report {
            (f.0)(&Progress { stage: stage.to_string(), done: self.done, total: self.total });
        }
    }
}
