//! Every file the tool writes goes to a temporary file beside its target and
//! is renamed into place when complete, so an interrupted run never leaves a
//! half-written image, weight file or checkpoint under the final name.

use anyhow::{Context, Result};
use std::path::Path;
use tempfile::NamedTempFile;

/// A temporary file in `dir` (created if missing), readable like any file
/// the user makes (0644 before umask) rather than tempfile's private 0600.
pub fn temp_file_in(dir: &Path, suffix: &str) -> Result<NamedTempFile> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the folder", dir.display()))?;
    let mut b = tempfile::Builder::new();
    b.prefix(".patchscaler-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    // The folder and the OS's reason: tempfile's own message names the
    // temporary file, which the user never asked for.
    b.tempfile_in(dir).map_err(|e| crate::paths::io_error(dir, &e))
}

/// The folder a path's temporary sibling goes in.
pub fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    /// Under the usual umask 022 the file must be group- and world-readable.
    #[test]
    #[cfg(unix)]
    fn temp_files_are_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = super::temp_file_in(&d.path().join("sub"), ".png").unwrap();
        let mode = std::fs::metadata(t.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    }
}
