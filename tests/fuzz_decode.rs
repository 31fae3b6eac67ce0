//! Seeded mutation fuzzing of the decode + preflight check (`check_input`),
//! in-process and without a model: bit flips, truncations, byte insertions
//! and header-field overwrites of small PNG, JPEG, WebP, TIFF and BMP files.
//! Every mutant must give Ok or an error line naming the file, never a
//! panic; and every truncated file must be refused (a decoder that quietly
//! fills the missing part would otherwise pass a cut-off download).
//!
//! `cargo test --release --test fuzz_decode` runs 10,000 mutants; the ignored
//! `fuzz_many` runs 100,000 (FUZZ_CASES overrides both).

use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
use patchscaler::cli::preflight::check_input;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Small originals: every format in more than one colour type.
fn originals() -> Vec<(&'static str, Vec<u8>)> {
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(32, 24, |x, y| Rgb([(x * 8) as u8, (y * 10) as u8, ((x ^ y) * 16) as u8])));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(24, 20, |x, y| Rgba([(x * 9) as u8, 100, (y * 12) as u8, (x * 10) as u8])));
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(20, 16, |x, y| Luma([(x * y) as u8])));
    let wide = DynamicImage::ImageRgb16(ImageBuffer::from_fn(16, 12, |x, y| Rgb([(x * 4000) as u16, (y * 5000) as u16, 77])));
    let enc = |img: &DynamicImage, f: ImageFormat| {
        let mut v = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut v), f).unwrap();
        v
    };
    vec![
        ("png", enc(&rgb, ImageFormat::Png)),
        ("png", enc(&rgba, ImageFormat::Png)),
        ("png", enc(&wide, ImageFormat::Png)),
        ("jpg", enc(&rgb, ImageFormat::Jpeg)),
        ("jpg", enc(&gray, ImageFormat::Jpeg)),
        ("webp", enc(&rgb, ImageFormat::WebP)),
        ("webp", enc(&rgba, ImageFormat::WebP)),
        ("tiff", enc(&rgb, ImageFormat::Tiff)),
        ("tiff", enc(&wide, ImageFormat::Tiff)),
        ("bmp", enc(&rgb, ImageFormat::Bmp)),
        ("bmp", enc(&rgba, ImageFormat::Bmp)),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mutation {
    BitFlips,
    Truncate,
    Insert,
    Header,
    Mixed,
}

/// Mutant `seed` of `data`, and how it was made.
fn mutate(data: &[u8], seed: u64) -> (Vec<u8>, Mutation) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = data.to_vec();
    let kind = [Mutation::BitFlips, Mutation::Truncate, Mutation::Insert, Mutation::Header, Mutation::Mixed][rng.random_range(0..5)];
    let flip = |v: &mut Vec<u8>, rng: &mut ChaCha8Rng| {
        for _ in 0..rng.random_range(1..=8) {
            let i = rng.random_range(0..v.len());
            v[i] ^= 1 << rng.random_range(0..8);
        }
    };
    let header = |v: &mut Vec<u8>, rng: &mut ChaCha8Rng| {
        // Size, type, offset and length fields all sit in the first bytes.
        for _ in 0..rng.random_range(1..=4) {
            let i = rng.random_range(0..v.len().min(64));
            v[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01, rng.random()][rng.random_range(0..6)];
        }
    };
    let insert = |v: &mut Vec<u8>, rng: &mut ChaCha8Rng| {
        let at = rng.random_range(0..=v.len());
        let n = rng.random_range(1..=16);
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        v.splice(at..at, bytes);
    };
    match kind {
        Mutation::BitFlips => flip(&mut v, &mut rng),
        Mutation::Truncate => v.truncate(rng.random_range(0..data.len())),
        Mutation::Insert => insert(&mut v, &mut rng),
        Mutation::Header => header(&mut v, &mut rng),
        Mutation::Mixed => {
            flip(&mut v, &mut rng);
            header(&mut v, &mut rng);
            insert(&mut v, &mut rng);
            let keep = rng.random_range(1..=v.len());
            v.truncate(keep);
        }
    }
    (v, kind)
}

/// Enough for every original; a mutated header asking for more is refused
/// before decoding, and the decoders may allocate no more than this.
const LIMIT_MIB: u64 = 1024;

fn fuzz(cases: u64) {
    let cases = std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(cases);
    let dir = tempfile::tempdir().unwrap();
    let originals = originals();
    let started = Instant::now();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let mut panics = Vec::new();
    let mut unnamed = Vec::new();
    let mut truncated_passed = Vec::new();
    for seed in 0..cases {
        let (ext, data) = &originals[(seed % originals.len() as u64) as usize];
        let (bytes, kind) = mutate(data, seed);
        let path = dir.path().join(format!("seed{seed}.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| check_input(&path, 4.0, LIMIT_MIB))) {
            Err(_) => panics.push(seed),
            Ok(Ok(_)) => {
                accepted += 1;
                // A PNG cut inside its final 12-byte IEND chunk has lost no pixel.
                let only_iend = *ext == "png" && bytes.len() + 12 >= data.len();
                if kind == Mutation::Truncate && !only_iend {
                    truncated_passed.push(format!("seed {seed} ({ext}, {} of {} bytes)", bytes.len(), data.len()));
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                let line = format!("{e:#}");
                if !line.contains(path.to_str().unwrap()) || line.contains('\n') {
                    unnamed.push(format!("seed {seed}: {line}"));
                }
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
    eprintln!(
        "fuzz: {cases} mutants in {:.1}s: {accepted} accepted, {refused} refused, {} panics",
        started.elapsed().as_secs_f64(),
        panics.len()
    );
    assert!(panics.is_empty(), "panicked on seeds {panics:?} (rerun one with FUZZ_CASES)");
    assert!(unnamed.is_empty(), "errors that are not one line naming the file:\n{}", unnamed.join("\n"));
    assert!(truncated_passed.is_empty(), "truncated files accepted:\n{}", truncated_passed.join("\n"));
    assert!(refused > cases / 4, "too few mutants refused ({refused}): the mutations are too mild");
    assert!(accepted > cases / 20, "too few mutants accepted ({accepted}): the check refuses too much");
}

#[test]
fn ten_thousand_mutants_no_panic_every_error_names_the_file() {
    fuzz(10_000);
}

#[test]
#[ignore = "about ten times the default run"]
fn fuzz_many() {
    fuzz(100_000);
}
