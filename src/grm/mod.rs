pub mod config;
pub mod unet;
pub mod loss;
