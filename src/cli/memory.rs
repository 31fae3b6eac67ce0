//! How much memory an upscale needs, known from the image's size alone, so
//! that `--memory-limit` refuses an image before the model loads instead of
//! letting the machine swap or the kernel kill the run.
//!
//! The figures fit the peak RSS of the release binary with the shipped model
//! on the CPU (2 threads, `/usr/bin/time -v`) from above, at every measured
//! size (README, "Memory"):
//!
//! | input  | output px | peak RSS | estimate |
//! |--------|-----------|----------|----------|
//! | 32x32  | 16 Ki     | 544 MiB  | 589 MiB  |
//! | 64x64  | 64 Ki     | 583 MiB  | 628 MiB  |
//! | 128x128| 256 Ki    | 733 MiB  | 784 MiB  |
//! | 256x256| 1 Mi      | 963 MiB  | 1024 MiB |
//! | 1024²  | 16 Mi     | 4024 MiB (issue 10) | 5824 MiB |
//!
//! A fixed part (libtorch, weights, RTM), a part per output pixel (the
//! full-resolution f32 buffers), and the autoencoder's activations, which
//! grow with the image only up to one tile (`TileConfig::default()`, 64
//! latent px at f = 8: 512 x 512 output px) and stay there. Smaller models
//! need less, so for them the estimate errs on the safe side.

/// Fixed part of the peak RSS, bytes.
pub const FIXED_BYTES: u64 = 576 << 20;
/// Peak RSS per native-scale output pixel, bytes.
pub const BYTES_PER_OUTPUT_PIXEL: u64 = 320;
/// Autoencoder activations per output pixel of one tile, bytes.
pub const TILE_BYTES_PER_PIXEL: u64 = 512;
/// Output pixels of one autoencoder tile.
pub const TILE_PIXELS: u64 = 512 * 512;

/// The default `--memory-limit`'s share of the machine's memory.
pub const DEFAULT_SHARE_PERCENT: u64 = 75;

/// Bytes an upscale of a `w` x `h` image at `scale` peaks at. The pipeline
/// always runs at x4, then resamples, so scales below 4 cost as much as x4.
pub fn needed_bytes(w: u32, h: u32, scale: f64) -> u64 {
    let s = scale.max(4.0);
    let out_pixels = (w as f64) * (h as f64) * s * s;
    let bytes = FIXED_BYTES as f64
        + out_pixels * BYTES_PER_OUTPUT_PIXEL as f64
        + out_pixels.min(TILE_PIXELS as f64) * TILE_BYTES_PER_PIXEL as f64;
    if bytes >= u64::MAX as f64 {
        u64::MAX
    } else {
        bytes.ceil() as u64
    }
}

/// The most input pixels an image may have under `limit_mib` at `scale`:
/// the inverse of [`needed_bytes`] (`serve` states and checks it up front).
pub fn max_input_pixels(limit_mib: u64, scale: f64) -> u64 {
    let s2 = scale.max(4.0) * scale.max(4.0);
    let room = limit_mib.saturating_mul(1 << 20).saturating_sub(FIXED_BYTES) as f64;
    let (b, t, tb) = (BYTES_PER_OUTPUT_PIXEL as f64, TILE_PIXELS as f64, TILE_BYTES_PER_PIXEL as f64);
    // Past one tile the autoencoder's share is constant; below, it grows.
    let out = if room >= t * (b + tb) { (room - t * tb) / b } else { room / (b + tb) };
    (out / s2).floor() as u64
}

/// MiB, rounded up, for messages.
pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// The refusal for an image over the limit: it names the flag and how much
/// the image would need, so the user knows what to raise it to.
pub fn check(w: u32, h: u32, scale: f64, limit_mib: u64) -> Result<(), String> {
    let need = needed_bytes(w, h, scale);
    if need > limit_mib.saturating_mul(1 << 20) {
        return Err(format!(
            "{w}x{h} needs about {} MiB at x{scale}, more than --memory-limit {limit_mib} MiB (raise --memory-limit or use a smaller image)",
            mib(need)
        ));
    }
    Ok(())
}

/// `DEFAULT_SHARE_PERCENT` of MemTotal in /proc/meminfo, in MiB; 8192 where
/// that file cannot be read (not Linux).
pub fn default_limit_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| mem_total_kib(&s))
        .map(|kib| kib / 1024 * DEFAULT_SHARE_PERCENT / 100)
        .filter(|&m| m > 0)
        .unwrap_or(8192)
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed_and_the_default_is_a_share_of_it() {
        assert_eq!(mem_total_kib("MemTotal:       24683784 kB\nMemFree: 1 kB\n"), Some(24683784));
        assert_eq!(mem_total_kib("nothing"), None);
        assert!(default_limit_mib() > 0);
    }

    #[test]
    fn absurd_sizes_do_not_overflow_and_name_the_flag() {
        let e = check(2147483647, 1, 4.0, 8192).unwrap_err();
        assert!(e.contains("--memory-limit") && e.contains("needs about"), "{e}");
        assert!(check(64, 64, 4.0, 8192).is_ok());
        assert_eq!(needed_bytes(u32::MAX, u32::MAX, 16.0), u64::MAX);
        // Scales below the native x4 cost as much as x4.
        assert_eq!(needed_bytes(10, 10, 2.0), needed_bytes(10, 10, 4.0));
    }
}
