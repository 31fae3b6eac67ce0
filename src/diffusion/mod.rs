pub mod schedule;
pub mod respace;
pub mod ddim;
