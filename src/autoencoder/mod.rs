pub mod config;
pub mod resnet;
pub mod attention;
pub mod encoder;
pub mod decoder;
pub mod model;
pub mod tiled;
