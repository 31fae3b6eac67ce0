pub mod patches;
pub mod groups;
pub mod sampler;
