//! `--memory-limit` is a bound: the shipped model's real peak RSS stays
//! under the limit the estimate asks for, whole and in regions (an input
//! that fits only in regions included), and an image that cannot fit even
//! in regions is refused before the model loads, naming the flag.
//!
//! Each child's peak RSS comes from wait4(2), which reports that child's
//! own resource usage.

use patchscaler::app::memory::{mib, needed_bytes, plan, tiled_bytes, Fit, SHIPPED_ALIGNMENT};
use patchscaler::pipeline::regions::{min_tile, RegionTiles};
use std::path::Path;
use std::process::{Command, Stdio};

fn save_image(path: &Path, side: u32) {
    image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 5) as u8, (y * 3) as u8, ((x * y) % 251) as u8]))
        .save(path)
        .unwrap();
}

/// Runs the binary; returns its exit code, its output and its peak RSS in MiB.
fn run_measured(args: &[&str], dir: &Path) -> (i32, String, u64) {
    let log = dir.join("child.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_patchscaler"))
        .args(args)
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(libc::WIFEXITED(status), "the child did not exit normally: {status}");
    let out = std::fs::read_to_string(&log).unwrap();
    (libc::WEXITSTATUS(status), out, usage.ru_maxrss as u64 / 1024) // KiB on Linux
}

fn upscale(input: &Path, out: &Path, limit: u64, dir: &Path) -> (i32, String, u64) {
    let (i, o, l) = (input.to_str().unwrap(), out.to_str().unwrap(), limit.to_string());
    run_measured(&["upscale", "--threads", "2", "--verbose", "--memory-limit", &l, i, "-o", o], dir)
}

#[test]
fn peak_rss_stays_under_the_limit_whole_and_in_regions() {
    let d = tempfile::tempdir().unwrap();
    let (small, mid) = (d.path().join("small.png"), d.path().join("mid.png"));
    save_image(&small, 32);
    save_image(&mid, 192);

    // Whole, at the least limit the estimate allows.
    let limit = mib(needed_bytes(32, 32, 4.0));
    let (code, out, peak) = upscale(&small, &d.path().join("small_x4.png"), limit, d.path());
    eprintln!("32x32 whole: peak RSS {peak} MiB, limit {limit} MiB");
    assert_eq!(code, 0, "{out}");
    assert!(peak > 0 && peak <= limit, "peak RSS {peak} MiB over --memory-limit {limit}");

    // 192x192 under a limit that only 2 x 2 regions fit.
    let tiles = RegionTiles::for_count(192, 2, SHIPPED_ALIGNMENT);
    let limit = mib(tiled_bytes(192, 192, 4.0, &tiles, SHIPPED_ALIGNMENT));
    assert!(needed_bytes(192, 192, 4.0) > limit << 20, "192 px must not fit whole under {limit} MiB");
    assert_eq!(plan(192, 192, 4.0, limit, SHIPPED_ALIGNMENT), Ok(Fit::Regions(tiles)));
    let (code, out, peak) = upscale(&mid, &d.path().join("mid_x4.png"), limit, d.path());
    eprintln!("192x192 in regions of {} px: peak RSS {peak} MiB, limit {limit} MiB", tiles.tile);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("in regions of {} px", tiles.tile)), "{out}");
    assert!(peak <= limit, "peak RSS {peak} MiB over --memory-limit {limit}");
    let img = image::open(d.path().join("mid_x4.png")).unwrap();
    assert_eq!((img.width(), img.height()), (768, 768));
}

#[test]
fn what_does_not_fit_even_in_regions_is_refused_before_the_model_loads() {
    let d = tempfile::tempdir().unwrap();
    let big = d.path().join("big.png");
    save_image(&big, 192);
    let smallest = RegionTiles::for_count(192, 3, SHIPPED_ALIGNMENT);
    assert_eq!(smallest.tile, min_tile(SHIPPED_ALIGNMENT));
    let limit = mib(tiled_bytes(192, 192, 4.0, &smallest, SHIPPED_ALIGNMENT)) - 1;
    let (b, l, o) = (big.to_str().unwrap(), limit.to_string(), d.path().join("big_x4.png"));
    let no_model = d.path().join("no-model");
    let (code, t, _) = run_measured(
        &["upscale", "--model", no_model.to_str().unwrap(), "--memory-limit", &l, b, "-o", o.to_str().unwrap()],
        d.path(),
    );
    assert_eq!(code, 1, "{t}");
    assert!(t.contains("big.png") && t.contains("--memory-limit") && t.contains("needs about"), "{t}");
    assert!(t.contains("in the smallest regions"), "{t}");
    assert!(!t.contains("model folder not found"), "the model was loaded before the refusal: {t}");
    assert!(!o.exists());
}
