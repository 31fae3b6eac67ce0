//! Reading and writing real-world images: every format, bit depth and
//! channel layout a user may hand us, with errors that name the file.

pub mod load;
pub mod save;

pub use load::{load_image, LoadedImage};
pub use save::{output_path_for, save_image};
