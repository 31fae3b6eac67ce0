//! How a path and a failed file operation read in a message: every error
//! the tool prints names the user's file in the user's words.

use std::path::Path;

/// One line for a failed file operation on `path`, in the user's words
/// rather than the OS's ("no such file", not "os error 2"); a symlink loop
/// is named as one instead of passing for a missing file.
pub fn io_error(path: &Path, e: &std::io::Error) -> anyhow::Error {
    let e = os_error(e);
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::ReadOnlyFilesystem => "read-only file system".to_string(),
        _ if e.raw_os_error() == Some(libc::ELOOP) => "too many levels of symbolic links".to_string(),
        _ => e.to_string(),
    };
    anyhow::anyhow!("{}: {what}", shown(path))
}

/// The OS's error inside `e`: tempfile wraps it with the path of the
/// temporary file it tried, a name the user never chose and should not see.
fn os_error(e: &std::io::Error) -> &std::io::Error {
    e.get_ref().and_then(|inner| inner.source()).and_then(|s| s.downcast_ref()).unwrap_or(e)
}

/// `path` as messages show it: bytes that are not UTF-8 escaped as `\xe9`.
/// `Path::display` shows every such byte as U+FFFD, so `caf\xe9.png` and
/// `caf\xe8.png` would print as one name.
pub fn shown(path: &Path) -> Shown<'_> {
    Shown(path)
}

pub struct Shown<'a>(&'a Path);

impl std::fmt::Display for Shown<'_> {
    #[cfg(unix)]
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::os::unix::ffi::OsStrExt;
        for chunk in self.0.as_os_str().as_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display().fmt(f)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn names_that_are_not_utf8_show_their_bytes() {
        let p = |b: &[u8]| Path::new(std::ffi::OsStr::from_bytes(b)).to_path_buf();
        assert_eq!(shown(&p(b"d/caf\xe9.png")).to_string(), "d/caf\\xe9.png");
        assert_eq!(shown(&p("d/café.png".as_bytes())).to_string(), "d/café.png");
        assert_ne!(shown(&p(b"caf\xe9")).to_string(), shown(&p(b"caf\xe8")).to_string());
    }

    #[test]
    fn a_temporary_file_s_name_stays_out_of_the_message() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("gone");
        let e = tempfile::Builder::new().prefix(".probe-").tempfile_in(&missing).unwrap_err();
        assert!(e.to_string().contains(".probe-"), "tempfile names its file: {e}");
        let m = io_error(&missing, &e).to_string();
        assert_eq!(m, format!("{}: no such file", missing.display()));
    }
}
