pub mod classifier;
pub mod rtm;
pub mod retrieval;
pub mod fps;
