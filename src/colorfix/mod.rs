pub mod wavelet;
pub mod adain;
