//! `--memory-limit` is a bound: the shipped model's real peak RSS on a small
//! image stays under the limit the estimate asks for, and an image over the
//! limit is refused before the model loads, naming the flag.
//!
//! Alone in its test binary, because the peak RSS is read with
//! getrusage(RUSAGE_CHILDREN): the largest child this process has waited for.

use patchscaler::cli::memory::{mib, needed_bytes};
use std::path::Path;
use std::process::Command;

fn save_image(path: &Path, side: u32) {
    image::RgbImage::from_fn(side, side, |x, y| image::Rgb([(x * 5) as u8, (y * 3) as u8, ((x * y) % 251) as u8]))
        .save(path)
        .unwrap();
}

#[test]
fn peak_rss_stays_under_the_limit_and_larger_images_are_refused_first() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("small.png");
    save_image(&inp, 32);
    let limit = mib(needed_bytes(32, 32, 4.0));
    let o = Command::new(env!("CARGO_BIN_EXE_patchscaler"))
        .args(["upscale", "--threads", "2", "--memory-limit", &limit.to_string()])
        .arg(&inp)
        .arg("-o")
        .arg(d.path().join("out.png"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    let peak_mib = usage.ru_maxrss as u64 / 1024; // KiB on Linux
    eprintln!("32x32 with the shipped model: peak RSS {peak_mib} MiB, limit {limit} MiB");
    assert!(peak_mib > 0 && peak_mib <= limit, "peak RSS {peak_mib} MiB over --memory-limit {limit}");

    // Four times the pixels: over the same limit, refused, and the (missing)
    // model is never reached.
    let big = d.path().join("big.png");
    save_image(&big, 64);
    let o = Command::new(env!("CARGO_BIN_EXE_patchscaler"))
        .args(["upscale", "--model"])
        .arg(d.path().join("no-model"))
        .args(["--memory-limit", &limit.to_string()])
        .arg(&big)
        .arg("-o")
        .arg(d.path().join("big_x4.png"))
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("big.png") && t.contains("--memory-limit") && t.contains("needs about"), "{t}");
    assert!(!t.contains("model folder not found"), "the model was loaded before the refusal: {t}");
}
