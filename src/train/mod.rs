//! Training machinery shared by every part's trainer: data, optimizer, EMA,
//! checkpoints, logging and the loop that ties them together.
pub mod ae;
pub mod args;
pub mod cache;
pub mod checkpoint;
pub mod crop;
pub mod data;
pub mod dit;
pub mod ema;
pub mod grm;
pub mod loader;
pub mod log;
pub mod lr_pairs;
pub mod multi_tensor;
pub mod optim;
pub mod plot;
pub mod reuse;
pub mod rtm;
pub mod texture;
pub mod texture_pairs;
pub mod trainer;

pub use data::ImageFolder;
pub use ema::Ema;
pub use loader::{CropConfig, CropLoader};
pub use optim::{clip_divisor, AdamW, AdamWConfig, LrSchedule};
pub use trainer::{Losses, Precision, Step, TrainOptions, Trainer};
