//! Degrading image files for `patchscaler degrade HR_DIR -o LR_DIR`.

use super::jpeg::{from_rgb8, to_rgb8};
use super::protocol::Degradation;
use anyhow::{Context, Result};
use std::path::Path;

/// Per-file seed from the run seed and the file *name* (not its directory
/// or its position in a listing), so files can be processed in any order
/// or in parallel and still get the same LR. FNV-1a over the name, mixed
/// with the seed by a SplitMix64 finaliser; both are stable across Rust
/// versions, unlike `DefaultHasher`.
pub fn file_seed(seed: u64, file_name: &str) -> u64 {
    let fnv = file_name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let mut z = fnv ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Reads the HR image at `in_path`, makes its LR with `kind` (seeded from
/// (seed, file name)) and writes it as PNG to `out_path`.
pub fn degrade_file(in_path: &Path, out_path: &Path, seed: u64, kind: Degradation, scale: i64) -> Result<()> {
    let rgb = image::open(in_path)
        .with_context(|| format!("reading HR image {}", in_path.display()))?
        .to_rgb8();
    let hr = from_rgb8(rgb.as_raw(), rgb.width(), rgb.height());
    let name = in_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lr = kind
        .lr_of_file(&hr, scale, seed, &name)
        .with_context(|| format!("degrading {}", in_path.display()))?;
    let (bytes, w, h) = to_rgb8(&lr)?;
    // Through a temporary file, so an interrupted run leaves no half-written PNG.
    let tmp = crate::atomic::temp_file_in(crate::atomic::parent_dir(out_path), ".png")?;
    image::save_buffer_with_format(tmp.path(), &bytes, w, h, image::ExtendedColorType::Rgb8, image::ImageFormat::Png)
        .with_context(|| format!("writing LR image {}", out_path.display()))?;
    tmp.persist(out_path).map_err(|e| anyhow::anyhow!("writing LR image {}: {}", out_path.display(), e.error))?;
    Ok(())
}
