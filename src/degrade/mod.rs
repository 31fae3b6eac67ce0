pub mod kernels;
pub mod filter;
pub mod usm;
pub mod noise;
pub mod jpeg;
pub mod resize;
pub mod pipeline;
