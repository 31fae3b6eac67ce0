pub mod ycbcr;
pub mod psnr;
pub mod ssim;
pub mod niqe;
