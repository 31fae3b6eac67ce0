//! Degrading image files for `patchscaler degrade HR_DIR -o LR_DIR`.

use super::jpeg::{from_rgb8, to_rgb8};
use super::protocol::Degradation;
pub use super::protocol::file_seed;
use anyhow::{Context, Result};
use std::path::Path;

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
