pub mod config;
pub mod files;
