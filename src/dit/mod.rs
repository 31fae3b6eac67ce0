pub mod config;
pub mod embed;
pub mod attention;
pub mod block;
pub mod final_layer;
pub mod texture_encoder;
pub mod model;
