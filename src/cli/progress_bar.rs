//! The per-image progress bar: stage and denoising step, with an ETA, on
//! stderr when it is a terminal (indicatif hides it otherwise, so piped and
//! logged runs get only the summary lines).

use crate::pipeline::ProgressFn;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Duration;

/// A bar for image `index` of `count`; hidden when `show` is false.
pub fn image_bar(index: usize, count: usize, input: &Path, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    // Length 1 until the pipeline's first report: a length of 0 shows 100 %.
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:25}] {percent:>3}% {msg} ({elapsed}, ETA {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("[{}/{count}] {}", index + 1, crate::imageio::shown(input)));
    if !bar.is_hidden() {
        // Elapsed time moves during a long Patch-DiT call, too.
        bar.enable_steady_tick(Duration::from_millis(500));
    }
    bar
}

/// The pipeline callback that moves `bar`.
pub fn progress_fn(bar: &ProgressBar) -> ProgressFn {
    let bar = bar.clone();
    ProgressFn::new(move |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(p.stage.clone());
    })
}
