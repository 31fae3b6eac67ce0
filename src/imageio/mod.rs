//! Reading and writing real-world images: every format, bit depth and
//! channel layout a user may hand us, with errors that name the file.

pub mod animation;
pub mod folder;
pub mod integrity;
pub mod load;
pub mod save;

pub use folder::{image_files, is_image_path};
pub use load::{decode_checked, load_image, Header, LoadedImage};
pub use save::{output_path_for, save_image};

pub use crate::paths::{io_error, shown, Shown};
