//! Which files are images, and the images in a folder: one rule for the
//! command line's inputs, the training data and `eval`'s LR folders.

use std::path::{Path, PathBuf};

/// Whether `p`'s extension names an image format (`image`'s list, `.gif`
/// included, any case). A folder yields these files and each is then read
/// by its content, so an image the decoder cannot read (AVIF) is an error
/// where it is read, never silently skipped here.
pub fn is_image_path(p: &Path) -> bool {
    p.extension().and_then(image::ImageFormat::from_extension).is_some()
}

/// The image files in `dir` (and in its subfolders when `recursive`),
/// sorted, links followed. A folder that cannot be listed is an error; an
/// entry inside it that cannot be read (a broken link, a subfolder without
/// permission) is left out with a warning.
pub fn image_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, walkdir::Error> {
    let walk = walkdir::WalkDir::new(dir).min_depth(1).follow_links(true).sort_by_file_name();
    let walk = if recursive { walk } else { walk.max_depth(1) };
    let mut out = Vec::new();
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() && is_image_path(e.path()) => out.push(e.into_path()),
            Ok(_) => {}
            Err(e) if e.depth() == 0 => return Err(e),
            Err(e) => tracing::warn!("{}: left out: {e}", dir.display()),
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_only_sorted_flat_or_recursive_and_a_missing_folder_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("sub")).unwrap();
        for f in ["b.PNG", "a.jpg", "notes.txt", "sub/c.webp", "anim.gif"] {
            std::fs::write(p.join(f), b"x").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(p.join("gone.png"), p.join("broken.png")).unwrap();
        let names = |v: Vec<PathBuf>| v.iter().map(|f| f.strip_prefix(p).unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>();
        assert_eq!(names(image_files(p, false).unwrap()), ["a.jpg", "anim.gif", "b.PNG"]);
        assert_eq!(names(image_files(p, true).unwrap()), ["a.jpg", "anim.gif", "b.PNG", "sub/c.webp"]);
        assert!(image_files(&p.join("missing"), false).is_err());
    }
}
