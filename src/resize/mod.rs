pub mod bicubic;
pub mod matlab;
