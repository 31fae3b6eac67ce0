//! The application layer: how one job runs, whoever asks for it. The
//! command line, the web page, `eval` and `bench` are adapters that turn
//! their own inputs (flags, form fields) into these plain values and call
//! the same functions, so the same settings give the same bytes everywhere.

pub mod memory;
pub mod model;
pub mod presets;
pub mod settings;
pub mod upscale;

pub use model::load_model;
pub use presets::{Overrides, Preset};
pub use settings::Settings;
pub use upscale::{parse_scale, upscale_one, Done, Job};
