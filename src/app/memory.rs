//! How much memory an upscale needs, known from the image's size alone, so
//! that `--memory-limit` refuses an image before the model loads instead of
//! letting the machine swap or the kernel kill the run, and picks how the
//! image runs: whole, or region by region (`pipeline::regions`) when whole
//! it would not fit.
//!
//! The figures bound the peak RSS of the release binary with the shipped
//! model on the CPU (2 threads), measured from above at every size in the
//! README's "Memory" table:
//!
//! - a fixed part: libtorch, the weights and the RTM. Of the 530-640 MiB
//!   measured for the smallest image, 190-290 MiB are libtorch's code
//!   mapped from disk, which varies with the page cache (a fresh clone's
//!   freshly written libraries map more), hence the margin;
//! - per output pixel of what runs at once (the whole image, or one
//!   region): the full-resolution float buffers of the pipeline, the latent
//!   patches (the exact latent's 192 channels make every overlapping patch
//!   tensor 12x the learned 16-channel one's: 512 -> 2048 peaked at 2352
//!   MiB against the learned model's 1660, hence 400 bytes here, 320
//!   before), and the
//!   autoencoder's activations, which grow only up to one autoencoder tile
//!   (`TileConfig::default()`, 512 x 512 output px) and stay there;
//! - per output pixel of the whole image, when tiled: the blended float
//!   image, its weights and the 8-bit output.
//!
//! Smaller models need less, so for them the estimate errs on the safe side.

use crate::imageio::{load::Header, shown};
use crate::pipeline::regions::{largest_region, min_tile, RegionTiles};
use std::path::Path;

/// Fixed part of the peak RSS, bytes.
pub const FIXED_BYTES: u64 = 768 << 20;
/// Peak RSS per output pixel of what runs at once, bytes.
pub const BYTES_PER_OUTPUT_PIXEL: u64 = 400;
/// Autoencoder activations per output pixel of one tile, bytes.
pub const TILE_BYTES_PER_PIXEL: u64 = 512;
/// Output pixels of one autoencoder tile.
pub const TILE_PIXELS: u64 = 512 * 512;
/// Peak RSS per output pixel of the whole image when it runs in regions.
pub const TILED_BYTES_PER_OUTPUT_PIXEL: u64 = 40;
/// LR px between region starts for the shipped geometry (x4, f = 8, PGS
/// stride 12): what the preflight assumes before a model is loaded.
pub const SHIPPED_ALIGNMENT: i64 = 24;
/// What `--qmap` keeps of the limit for its figure, MiB: each half at most
/// `qmap_image::MAX_SIDE` px a side, about 120 bytes per pixel to draw.
pub const QMAP_RESERVE_MIB: u64 = 128;

/// The part of `--memory-limit` left to the upscale itself.
pub fn usable_mib(limit_mib: u64, qmap: bool) -> u64 {
    if qmap {
        limit_mib.saturating_sub(QMAP_RESERVE_MIB)
    } else {
        limit_mib
    }
}

/// The default `--memory-limit`'s share of the machine's memory.
pub const DEFAULT_SHARE_PERCENT: u64 = 75;

/// How an image runs under a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    Whole,
    Regions(RegionTiles),
}

/// Output pixels per LR pixel: the pipeline always runs at x4, then
/// resamples, so scales below 4 cost as much as x4.
fn pixels_per_input_pixel(scale: f64) -> f64 {
    scale.max(4.0) * scale.max(4.0)
}

/// Bytes the pipeline peaks at for `out_pixels` computed at once.
fn at_once_bytes(out_pixels: f64) -> f64 {
    out_pixels * BYTES_PER_OUTPUT_PIXEL as f64 + out_pixels.min(TILE_PIXELS as f64) * TILE_BYTES_PER_PIXEL as f64
}

fn saturate(bytes: f64) -> u64 {
    if bytes >= u64::MAX as f64 {
        u64::MAX
    } else {
        bytes.ceil() as u64
    }
}

/// Bytes an upscale of a `w` x `h` image at `scale` peaks at, whole.
pub fn needed_bytes(w: u32, h: u32, scale: f64) -> u64 {
    let out_pixels = (w as f64) * (h as f64) * pixels_per_input_pixel(scale);
    saturate(FIXED_BYTES as f64 + at_once_bytes(out_pixels))
}

/// Bytes it peaks at in regions of `tiles`.
pub fn tiled_bytes(w: u32, h: u32, scale: f64, tiles: &RegionTiles, alignment: i64) -> u64 {
    let (rh, rw) = largest_region(h as i64, w as i64, tiles, alignment);
    region_bytes(w, h, scale, rh as f64 * rw as f64)
}

/// The same, given the LR pixels of the largest region.
fn region_bytes(w: u32, h: u32, scale: f64, region_pixels: f64) -> u64 {
    let whole = (w as f64) * (h as f64) * pixels_per_input_pixel(scale);
    let region = region_pixels * pixels_per_input_pixel(scale);
    saturate(FIXED_BYTES as f64 + whole * TILED_BYTES_PER_OUTPUT_PIXEL as f64 + at_once_bytes(region))
}

/// Whole if it fits, else in the fewest regions that fit (along the longer
/// side 2, 3, ... regions, down to `regions::min_tile`), else the refusal:
/// it names the flag and what the image would need at least, so the user
/// knows what to raise it to.
pub fn plan(w: u32, h: u32, scale: f64, limit_mib: u64, alignment: i64) -> Result<Fit, String> {
    let limit = limit_mib.saturating_mul(1 << 20);
    if needed_bytes(w, h, scale) <= limit {
        return Ok(Fit::Whole);
    }
    let longer = w.max(h) as i64;
    let smallest = min_tile(alignment);
    let mut least: Option<u64> = None;
    if longer > smallest {
        // More regions along the longer side, smaller regions, less memory:
        // the fewest that fit, by bisection between 2 and the count that
        // gives the smallest tile (millions for absurd sizes).
        let fits = |n: i64| tiled_bytes(w, h, scale, &RegionTiles::for_count(longer, n, alignment), alignment) <= limit;
        let most = (2..).map(|k| 1i64 << k).find(|&n| RegionTiles::for_count(longer, n, alignment).tile <= smallest).expect("the tile shrinks with n");
        if fits(most) {
            let (mut lo, mut hi) = (2, most); // fits(hi); the answer is in [lo, hi]
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if fits(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            return Ok(Fit::Regions(RegionTiles::for_count(longer, hi, alignment)));
        }
        least = Some(tiled_bytes(w, h, scale, &RegionTiles::for_count(longer, most, alignment), alignment));
    }
    let (need, how) = match least {
        Some(l) => (l, " in the smallest regions"),
        None => (needed_bytes(w, h, scale), ""),
    };
    Err(format!(
        "{w}x{h} needs about {} MiB at x{scale}{how}, more than --memory-limit {limit_mib} MiB (raise --memory-limit or use a smaller image)",
        mib(need)
    ))
}

/// The refusal, if an image cannot run under the limit even in regions.
pub fn check(w: u32, h: u32, scale: f64, limit_mib: u64) -> Result<(), String> {
    plan(w, h, scale, limit_mib, SHIPPED_ALIGNMENT).map(|_| ())
}

/// The header test an input passes before any pixel is decoded, in the
/// preflight and again when it is computed (the file may have changed in
/// between).
pub fn admit(path: &Path, scale: f64, limit_mib: u64) -> impl FnOnce(&Header) -> anyhow::Result<()> + '_ {
    move |h| check(h.width, h.height, scale, limit_mib).map_err(|e| anyhow::anyhow!("{}: {e}", shown(path)))
}

/// The most input pixels an image may have under `limit_mib` at `scale`,
/// in the smallest regions: `serve` states and checks it up front.
pub fn max_input_pixels(limit_mib: u64, scale: f64) -> u64 {
    let room = limit_mib.saturating_mul(1 << 20).saturating_sub(FIXED_BYTES) as f64;
    let side = (min_tile(SHIPPED_ALIGNMENT) + SHIPPED_ALIGNMENT - 1) as f64;
    let per_input = pixels_per_input_pixel(scale);
    let tiled = (room - at_once_bytes(side * side * per_input)).max(0.0) / (TILED_BYTES_PER_OUTPUT_PIXEL as f64 * per_input);
    // Whole: past one autoencoder tile its share is constant; below, it grows.
    let (b, t, tb) = (BYTES_PER_OUTPUT_PIXEL as f64, TILE_PIXELS as f64, TILE_BYTES_PER_PIXEL as f64);
    let whole = (if room >= t * (b + tb) { (room - t * tb) / b } else { room / (b + tb) }) / per_input;
    tiled.max(whole).floor() as u64
}

/// MiB, rounded up, for messages.
pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
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

    #[test]
    fn small_images_run_whole_and_large_ones_in_the_fewest_regions_that_fit() {
        let a = SHIPPED_ALIGNMENT;
        assert_eq!(plan(256, 256, 4.0, 8192, a), Ok(Fit::Whole));
        // 2048 px whole needs about 21 GiB; under 4 GiB it runs in regions.
        assert!(needed_bytes(2048, 2048, 4.0) > 20 << 30);
        let Ok(Fit::Regions(t)) = plan(2048, 2048, 4.0, 4096, a) else { panic!("2048 px under 4 GiB") };
        assert!(tiled_bytes(2048, 2048, 4.0, &t, a) <= 4096 << 20);
        // One region fewer along the side would not have fitted.
        let n = crate::pipeline::regions::spans(2048, &t, a).len() as i64;
        assert!(n > 2);
        let fewer = RegionTiles::for_count(2048, n - 1, a);
        assert!(tiled_bytes(2048, 2048, 4.0, &fewer, a) > 4096 << 20);
        // A tighter limit takes smaller regions, never larger.
        let Ok(Fit::Regions(u)) = plan(2048, 2048, 4.0, 3800, a) else { panic!("2048 px under 3800 MiB") };
        assert!(u.tile < t.tile);
        let e = plan(2048, 2048, 4.0, 1024, a).unwrap_err();
        assert!(e.contains("--memory-limit 1024") && e.contains("in the smallest regions"), "{e}");
        // Wide and narrow: the longer side decides the count.
        assert!(matches!(plan(4000, 100, 4.0, 1200, a), Ok(Fit::Regions(_))));
    }

    #[test]
    fn the_stated_maximum_fits_and_twice_it_does_not() {
        for limit in [1024, 2048, 8192] {
            let p = max_input_pixels(limit, 4.0);
            let side = (p as f64).sqrt().floor() as u32;
            assert!(check(side, side, 4.0, limit).is_ok(), "{limit}: {side}");
            let twice = ((2 * p) as f64).sqrt().ceil() as u32;
            assert!(check(twice, twice, 4.0, limit).is_err(), "{limit}: {twice}");
        }
    }
}
