//! The list of training images: a folder tree, or the rows of a data manifest.
//!
//! The list is fixed and sorted when it is opened, so that a loader's k-th
//! batch can depend only on (seed, k) and this list. Files whose header
//! cannot be read are dropped here with a warning rather than failing a run
//! hours in.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The manifest file name looked for inside a folder.
pub const MANIFEST: &str = "manifest.csv";

#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    files: Vec<PathBuf>,
}

impl ImageFolder {
    /// Opens `path`: a manifest CSV (columns `file,...,split`, `file` relative
    /// to the CSV's folder), a folder holding `manifest.csv`, or any other
    /// folder, scanned recursively. `split` ("train", "val") filters the
    /// manifest rows and needs one.
    pub fn open(path: impl AsRef<Path>, split: Option<&str>) -> Result<Self> {
        let path = path.as_ref();
        let candidates = if path.is_file() {
            read_manifest(path, split)?
        } else if path.join(MANIFEST).is_file() {
            read_manifest(&path.join(MANIFEST), split)?
        } else if path.is_dir() {
            if let Some(s) = split {
                bail!("{}: split {s:?} asked for, but the folder has no {MANIFEST}", path.display());
            }
            crate::imageio::image_files(path, true).with_context(|| format!("listing {}", path.display()))?
        } else {
            bail!("{}: no such image folder or manifest", path.display());
        };
        let mut files: Vec<PathBuf> = candidates.into_iter().filter(|f| readable(f)).collect();
        files.sort();
        if files.is_empty() {
            bail!("{}: no readable images{}", path.display(), split.map(|s| format!(" in split {s:?}")).unwrap_or_default());
        }
        Ok(ImageFolder { files })
    }

    /// A folder from an explicit file list (kept in the given order).
    pub fn from_files(files: Vec<PathBuf>) -> Self {
        ImageFolder { files }
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Only the header is read: cheap even for large wallpapers.
fn readable(path: &Path) -> bool {
    let dims = image::ImageReader::open(path)
        .map_err(anyhow::Error::from)
        .and_then(|r| r.with_guessed_format().map_err(anyhow::Error::from))
        .and_then(|r| r.into_dimensions().map_err(anyhow::Error::from));
    match dims {
        Ok((w, h)) if w > 0 && h > 0 => true,
        Ok(_) => {
            tracing::warn!("skipping {}: empty image", path.display());
            false
        }
        Err(e) => {
            tracing::warn!("skipping {}: {e:#}", path.display());
            false
        }
    }
}

fn read_manifest(csv: &Path, split: Option<&str>) -> Result<Vec<PathBuf>> {
    let what = || format!("reading manifest {}", csv.display());
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_path(csv).with_context(what)?;
    let header = rd.headers().with_context(what)?.clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let file_col = column("file").with_context(|| format!("{}: no `file` column", csv.display()))?;
    let split_col = column("split");
    if split.is_some() && split_col.is_none() {
        bail!("{}: a split was asked for but there is no `split` column", csv.display());
    }
    let root = csv.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for (row, record) in rd.records().enumerate() {
        let record = record.with_context(what)?;
        let file = record.get(file_col).with_context(|| format!("{}: row {} has no file", csv.display(), row + 2))?;
        let keep = match (split, split_col) {
            (Some(want), Some(c)) => record.get(c) == Some(want),
            _ => true,
        };
        if keep {
            files.push(root.join(file));
        }
    }
    Ok(files)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn write_png(path: &Path, w: u32, h: u32, shade: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([shade, (x * 7) as u8, (y * 5) as u8])).save(path).unwrap();
    }

    #[test]
    fn scans_recursively_and_skips_unreadable_files() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 8, 8, 1);
        write_png(&dir.path().join("sub/deeper/b.PNG"), 8, 8, 2);
        std::fs::write(dir.path().join("broken.jpg"), b"not a jpeg").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let folder = ImageFolder::open(dir.path(), None).unwrap();
        let names: Vec<_> = folder.files().iter().map(|f| f.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.png", "b.PNG"]);
        assert!(ImageFolder::open(dir.path(), Some("train")).is_err(), "a split needs a manifest");
    }

    #[test]
    fn manifest_rows_are_filtered_by_split() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t1.png", "t2.png", "v1.png"] {
            write_png(&dir.path().join("images").join(name), 8, 8, 3);
        }
        let csv = "file,source_package,licence,width,height,split\n\
                   images/t1.png,pkg,\"GPL-2+, or later\",8,8,train\n\
                   images/v1.png,pkg,\"MIT\",8,8,val\n\
                   images/t2.png,pkg,CC0,8,8,train\n\
                   images/missing.png,pkg,CC0,8,8,train\n";
        std::fs::write(dir.path().join(MANIFEST), csv).unwrap();
        let train = ImageFolder::open(dir.path(), Some("train")).unwrap();
        assert_eq!(train.files(), [dir.path().join("images/t1.png"), dir.path().join("images/t2.png")]);
        let val = ImageFolder::open(dir.path().join(MANIFEST), Some("val")).unwrap();
        assert_eq!(val.len(), 1);
        assert_eq!(ImageFolder::open(dir.path(), None).unwrap().len(), 3);
    }
}
