//! What the handlers share.

use super::guard::Access;
use super::jobs::Jobs;
use crate::device::DeviceArg;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub struct AppState {
    pub jobs: Arc<Jobs>,
    pub devices: Vec<DeviceArg>,
    pub max_upload_bytes: usize,
    pub memory_limit_mib: u64,
    pub model_name: String,
    /// Uploads read and checked at once (each may hold two files and a
    /// decoded image); one more is refused at once rather than queued.
    pub uploads: Arc<Semaphore>,
    pub max_uploads: usize,
    /// A whole upload's body; the pause between two of its pieces is
    /// bounded by the router's body timeout.
    pub upload_timeout: Duration,
    /// The longest pause inside a request body.
    pub body_timeout: Duration,
    pub access: Arc<Access>,
}
