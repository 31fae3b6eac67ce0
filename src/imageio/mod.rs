//! Reading and writing real-world images: every format, bit depth and
//! channel layout a user may hand us, with errors that name the file.

pub mod integrity;
pub mod load;
pub mod save;

pub use load::{decode_checked, load_image, Header, LoadedImage};
pub use save::{output_path_for, save_image};

use std::path::Path;

/// One line for a failed file operation on `path`, in the user's words
/// rather than the OS's ("no such file", not "os error 2"); a symlink loop
/// is named as one instead of passing for a missing file.
pub fn io_error(path: &Path, e: &std::io::Error) -> anyhow::Error {
    let what = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ if e.raw_os_error() == Some(libc::ELOOP) => "too many levels of symbolic links".to_string(),
        _ => e.to_string(),
    };
    anyhow::anyhow!("{}: {what}", path.display())
}
