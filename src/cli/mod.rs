pub mod upscale;
pub mod degrade;
