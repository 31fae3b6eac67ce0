//! The job queue of `patchscaler serve`.
//!
//! One worker thread per device owns that device's model and runs one job
//! at a time, first come first served; the others wait in the device's
//! queue. Every job's state is a `watch` channel that the page follows
//! through server-sent events (`http::events`).
//!
//! What a client that goes away leaves behind: nothing that outlives it.
//! - A job whose event stream closes (tab closed, page reloaded, network
//!   gone) before it finished is cancelled: taken out of the queue if it
//!   waits, its result thrown away when the worker finishes if it runs (the
//!   pipeline has no way yet to stop half-way; `JobHandle::forward_pipeline_progress`
//!   returns the flag a step callback will check).
//! - A job whose event stream is never opened is cancelled after
//!   `UNWATCHED_TIMEOUT`.
//! - A finished job's images are kept in memory for `keep_results` (the page
//!   fetches them right away; the download button fetches again), then
//!   dropped, fetched or not; past `Retention`'s count or bytes the oldest
//!   go first, so that a fast stream of jobs cannot fill the memory with
//!   results nobody fetches.
//! - An upload holds a `Slot` in the queue while its body is read, so that a
//!   full queue is refused before any byte of the body is read, and an
//!   upload read in full is never refused because the queue filled meanwhile.
//! - Files: each job works in its own temporary folder inside the server's
//!   temporary folder (generated names only), removed when the job ends,
//!   whatever the outcome; the server's folder is removed at shutdown.

use crate::app::Preset;
use crate::device::DeviceArg;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A queued job not followed by any event stream within this time is cancelled.
pub const UNWATCHED_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a job stands, as the page receives it (one JSON object per
/// server-sent event, tagged by `state`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum JobEvent {
    /// Waiting for the device: `ahead` jobs run or wait before it.
    Queued { device: String, ahead: usize },
    /// Taken by the device's worker: input written, sampling plan made.
    Loading { elapsed_s: f64 },
    /// In the pipeline; `progress` once the pipeline reports steps.
    Running {
        elapsed_s: f64,
        progress: Option<Progress>,
    },
    Done {
        elapsed_s: f64,
        /// The `patchscaler upscale` summary line.
        summary: String,
        width: u32,
        height: u32,
        has_hr: bool,
    },
    /// One line, for the page.
    Failed { error: String },
}

impl JobEvent {
    pub fn is_final(&self) -> bool {
        matches!(self, JobEvent::Done { .. } | JobEvent::Failed { .. })
    }
}

/// A pipeline step report: which stage, step `step` of `steps`. Nothing
/// sends it yet; see `JobHandle::forward_pipeline_progress`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Progress {
    pub stage: String,
    pub step: usize,
    pub steps: usize,
}

/// The latest event and when the work started (for the running clock).
#[derive(Clone, Debug)]
pub struct Status {
    pub event: JobEvent,
    pub started: Option<Instant>,
}

impl Status {
    /// The event with its elapsed time brought up to now.
    pub fn current(&self) -> JobEvent {
        let mut e = self.event.clone();
        if let (Some(t), JobEvent::Loading { elapsed_s } | JobEvent::Running { elapsed_s, .. }) =
            (self.started, &mut e)
        {
            *elapsed_s = round2(t.elapsed().as_secs_f64());
        }
        e
    }
}

fn round2(s: f64) -> f64 {
    (s * 100.0).round() / 100.0
}

/// What the client asked for, checked by the HTTP layer.
pub struct JobRequest {
    /// The client's file name, for display and the download name only.
    pub name: String,
    pub image: Vec<u8>,
    pub hr: Option<Vec<u8>>,
    pub preset: Preset,
    pub scale: f64,
    pub seed: u64,
    pub device: DeviceArg,
    pub max_pixels: u64,
    /// The server's `--memory-limit`, checked again as `upscale` does.
    pub memory_limit_mib: u64,
}

/// A finished job's images, PNG-encoded.
pub struct JobOutput {
    pub result: Vec<u8>,
    pub bicubic: Vec<u8>,
    pub qmap: Vec<u8>,
    pub hr: Option<Vec<u8>>,
    pub download_name: String,
}

struct Entry {
    request: Option<JobRequest>,
    device: DeviceArg,
    status: watch::Sender<Status>,
    watchers: usize,
    ever_watched: bool,
    created: Instant,
    output: Option<Arc<JobOutput>>,
    finished: Option<Instant>,
}

impl JobOutput {
    fn bytes(&self) -> usize {
        self.result.len() + self.bicubic.len() + self.qmap.len() + self.hr.as_ref().map_or(0, Vec::len)
    }
}

#[derive(Default)]
struct State {
    jobs: HashMap<String, Entry>,
    /// Places held by uploads still being read (`Slot`).
    reserved: usize,
    /// Keyed by `device_name`.
    queues: HashMap<String, VecDeque<String>>,
    running: HashMap<String, String>,
}

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("device {0} is not available on this server")]
    NoDevice(String),
    #[error("the queue is full ({0} images wait); try again when some are done")]
    QueueFull(usize),
}

/// How long and how many finished jobs are kept for their page.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub keep: Duration,
    /// Finished jobs, failed ones included.
    pub max_count: usize,
    /// Their images' PNG bytes together. The newest result is kept even
    /// alone above it: its page is about to fetch it.
    pub max_bytes: usize,
}

/// All jobs of a server.
pub struct Jobs {
    state: Mutex<State>,
    wake: Condvar,
    max_queue: usize,
    retention: Retention,
}

/// A place in the queue, held from the start of an upload to its `submit`
/// (given back if the upload is refused or its client goes away).
pub struct Slot {
    jobs: Arc<Jobs>,
    used: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.used {
            let mut st = self.jobs.lock();
            st.reserved = st.reserved.saturating_sub(1);
        }
    }
}

impl Jobs {
    /// A queue per device in `devices`; at most `max_queue` jobs wait in all.
    pub fn new(devices: &[DeviceArg], max_queue: usize, retention: Retention) -> Arc<Self> {
        let mut st = State::default();
        for d in devices {
            st.queues.insert(device_name(*d), VecDeque::new());
        }
        Arc::new(Jobs {
            state: Mutex::new(st),
            wake: Condvar::new(),
            max_queue,
            retention,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn devices(&self) -> Vec<DeviceArg> {
        let st = self.lock();
        [DeviceArg::Cpu, DeviceArg::Cuda]
            .into_iter()
            .filter(|d| st.queues.contains_key(&device_name(*d)))
            .collect()
    }

    /// A place in the queue for an upload about to be read; refused when
    /// the waiting jobs and the uploads in progress fill the queue.
    pub fn reserve(self: &Arc<Self>) -> Result<Slot, SubmitError> {
        let mut st = self.lock();
        let waiting = st.queues.values().map(VecDeque::len).sum::<usize>() + st.reserved;
        if waiting >= self.max_queue {
            return Err(SubmitError::QueueFull(waiting));
        }
        st.reserved += 1;
        Ok(Slot { jobs: Arc::clone(self), used: false })
    }

    /// Queues a job in the place `slot` holds; returns its id (random, 128
    /// bits: ids are the only handle on a job, so they must not be guessable).
    pub fn submit(&self, req: JobRequest, mut slot: Slot) -> Result<String, SubmitError> {
        let mut st = self.lock();
        let device = req.device;
        if !st.queues.contains_key(&device_name(device)) {
            return Err(SubmitError::NoDevice(device_name(device)));
        }
        st.reserved = st.reserved.saturating_sub(1);
        slot.used = true;
        let id = format!("{:032x}", rand::random::<u128>());
        let (tx, _) = watch::channel(Status {
            event: JobEvent::Queued {
                device: device_name(device),
                ahead: 0,
            },
            started: None,
        });
        st.jobs.insert(
            id.clone(),
            Entry {
                request: Some(req),
                device,
                status: tx,
                watchers: 0,
                ever_watched: false,
                created: Instant::now(),
                output: None,
                finished: None,
            },
        );
        st.queues
            .get_mut(&device_name(device))
            .unwrap()
            .push_back(id.clone());
        renumber(&st, device);
        drop(st);
        self.wake.notify_all();
        Ok(id)
    }

    /// Follows a job's state; the job is cancelled when the last returned
    /// guard is dropped before it finished.
    pub fn subscribe(self: &Arc<Self>, id: &str) -> Option<(watch::Receiver<Status>, WatchGuard)> {
        let mut st = self.lock();
        let e = st.jobs.get_mut(id)?;
        e.watchers += 1;
        e.ever_watched = true;
        let rx = e.status.subscribe();
        Some((
            rx,
            WatchGuard {
                jobs: Arc::clone(self),
                id: id.to_string(),
            },
        ))
    }

    /// A job's state now, without following it.
    pub fn status(&self, id: &str) -> Option<JobEvent> {
        Some(self.lock().jobs.get(id)?.status.borrow().current())
    }

    /// A finished job's images.
    pub fn output(&self, id: &str) -> Option<Arc<JobOutput>> {
        self.lock().jobs.get(id)?.output.clone()
    }

    /// Forgets a job whatever its state (queued: out of the queue; running:
    /// its result is dropped when it ends). False when there is no such job.
    pub fn remove(&self, id: &str) -> bool {
        remove_in(&mut self.lock(), id)
    }

    /// Jobs waiting and running, per device, for the page's queue line.
    pub fn load(&self) -> Vec<(String, usize, bool)> {
        let st = self.lock();
        let mut v: Vec<(String, usize, bool)> = st
            .queues
            .iter()
            .map(|(d, q)| (d.clone(), q.len(), st.running.contains_key(d)))
            .collect();
        v.sort();
        v
    }

    /// Drops results kept longer than `keep_results` and queued jobs nobody
    /// followed within `UNWATCHED_TIMEOUT`. Returns how many jobs it dropped.
    pub fn sweep(&self) -> usize {
        let stale: Vec<String> = {
            let st = self.lock();
            st.jobs
                .iter()
                .filter(|(_, e)| match e.finished {
                    Some(t) => t.elapsed() >= self.retention.keep,
                    None => !e.ever_watched && e.created.elapsed() >= UNWATCHED_TIMEOUT,
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        stale.iter().filter(|id| self.remove(id)).count()
    }

    /// Jobs the server holds (queued, running or finished and kept).
    pub fn len(&self) -> usize {
        self.lock().jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The worker loop of one device: takes the next job, runs `work` on
    /// it, stores the outcome. Never returns.
    pub fn work_loop<F>(self: &Arc<Self>, device: DeviceArg, mut work: F) -> !
    where
        F: FnMut(&JobRequest, &JobHandle) -> Result<(JobOutput, String, u32, u32), String>,
    {
        let key = device_name(device);
        loop {
            let (id, req) = {
                let mut st = self.lock();
                loop {
                    if let Some(id) = st.queues.get_mut(&key).and_then(VecDeque::pop_front) {
                        let req = st.jobs.get_mut(&id).and_then(|e| e.request.take());
                        if let Some(req) = req {
                            st.running.insert(key.clone(), id.clone());
                            renumber(&st, device);
                            break (id, req);
                        }
                        continue;
                    }
                    st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            };
            let handle = JobHandle {
                jobs: Arc::clone(self),
                id: id.clone(),
            };
            handle.set(JobEvent::Loading { elapsed_s: 0.0 }, Some(Instant::now()));
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&req, &handle)))
                    .unwrap_or_else(|p| Err(panic_line(p.as_ref())));
            let elapsed = handle.elapsed();
            drop(req);
            let mut st = self.lock();
            st.running.remove(&key);
            renumber(&st, device);
            // A job removed meanwhile (its client went away) keeps nothing.
            if let Some(e) = st.jobs.get_mut(&id) {
                let event = match outcome {
                    Ok((out, summary, width, height)) => {
                        let has_hr = out.hr.is_some();
                        e.output = Some(Arc::new(out));
                        JobEvent::Done {
                            elapsed_s: round2(elapsed),
                            summary,
                            width,
                            height,
                            has_hr,
                        }
                    }
                    Err(error) => JobEvent::Failed { error },
                };
                e.finished = Some(Instant::now());
                e.status.send_replace(Status {
                    event,
                    started: None,
                });
                self.retention.apply(&mut st, &id);
            }
        }
    }
}

impl Retention {
    /// Drops the oldest finished jobs but `newest` while more than
    /// `max_count` are kept or their images exceed `max_bytes`.
    fn apply(&self, st: &mut State, newest: &str) {
        let mut kept: Vec<(Instant, String, usize)> = st
            .jobs
            .iter()
            .filter_map(|(id, e)| {
                let bytes = e.output.as_ref().map_or(0, |o| o.bytes());
                e.finished.map(|t| (t, id.clone(), bytes))
            })
            .collect();
        kept.sort();
        let mut count = kept.len();
        let mut bytes: usize = kept.iter().map(|k| k.2).sum();
        for (_, id, b) in kept {
            if count <= self.max_count && bytes <= self.max_bytes {
                break;
            }
            if id != newest {
                remove_in(st, &id);
                count -= 1;
                bytes -= b;
            }
        }
    }
}

/// `Jobs::remove` under a lock already held.
fn remove_in(st: &mut State, id: &str) -> bool {
    let Some(e) = st.jobs.remove(id) else {
        return false;
    };
    if let Some(q) = st.queues.get_mut(&device_name(e.device)) {
        if let Some(i) = q.iter().position(|j| j == id) {
            q.remove(i);
            renumber(st, e.device);
        }
    }
    true
}

/// Cancels its job, when dropped as the job's last follower before the job
/// finished.
pub struct WatchGuard {
    jobs: Arc<Jobs>,
    id: String,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let cancel = {
            let mut st = self.jobs.lock();
            match st.jobs.get_mut(&self.id) {
                Some(e) => {
                    e.watchers = e.watchers.saturating_sub(1);
                    e.watchers == 0 && e.finished.is_none()
                }
                None => false,
            }
        };
        if cancel {
            self.jobs.remove(&self.id);
        }
    }
}

/// The running job, as the worker's code sees it (cloned into the
/// pipeline's progress callback).
#[derive(Clone)]
pub struct JobHandle {
    jobs: Arc<Jobs>,
    id: String,
}

impl JobHandle {
    fn set(&self, event: JobEvent, started: Option<Instant>) {
        let st = self.jobs.lock();
        if let Some(e) = st.jobs.get(&self.id) {
            let started = started.or(e.status.borrow().started);
            e.status.send_replace(Status { event, started });
        }
    }

    fn elapsed(&self) -> f64 {
        let st = self.jobs.lock();
        st.jobs
            .get(&self.id)
            .and_then(|e| e.status.borrow().started)
            .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// Whether the job is still wanted (false once its client went away).
    pub fn wanted(&self) -> bool {
        self.jobs.lock().jobs.contains_key(&self.id)
    }

    /// The job enters the pipeline.
    pub fn running(&self) {
        self.set(
            JobEvent::Running {
                elapsed_s: 0.0,
                progress: None,
            },
            None,
        );
    }

    /// Called from the pipeline's progress callback (`SamplingOptions::
    /// progress`, see `work::job_in`): the page shows a step bar beside its
    /// running clock. Returns whether the job is still wanted (the pipeline
    /// cannot be stopped mid-image yet; an unwanted result is dropped).
    pub fn forward_pipeline_progress(&self, stage: &str, step: usize, steps: usize) -> bool {
        self.set(
            JobEvent::Running {
                elapsed_s: 0.0,
                progress: Some(Progress {
                    stage: stage.to_string(),
                    step,
                    steps,
                }),
            },
            None,
        );
        self.wanted()
    }
}

/// Sends every waiting job of `device` its place in line.
fn renumber(st: &State, device: DeviceArg) {
    let busy = usize::from(st.running.contains_key(&device_name(device)));
    if let Some(q) = st.queues.get(&device_name(device)) {
        for (i, id) in q.iter().enumerate() {
            if let Some(e) = st.jobs.get(id) {
                e.status.send_replace(Status {
                    event: JobEvent::Queued {
                        device: device_name(device),
                        ahead: i + busy,
                    },
                    started: None,
                });
            }
        }
    }
}

pub fn device_name(d: DeviceArg) -> String {
    match d {
        DeviceArg::Cpu => "cpu".into(),
        DeviceArg::Cuda => "cuda".into(),
    }
}

/// A panic's message as one line.
fn panic_line(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
        .unwrap_or("unknown error");
    format!(
        "internal error: {}",
        msg.lines().next().unwrap_or("unknown error")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> JobRequest {
        JobRequest {
            name: "a.png".into(),
            image: vec![1, 2, 3],
            hr: None,
            preset: Preset::Balanced,
            scale: 4.0,
            seed: 0,
            device: DeviceArg::Cpu,
            max_pixels: 100,
            memory_limit_mib: 1024,
        }
    }

    fn keep(max_count: usize, max_bytes: usize) -> Retention {
        Retention { keep: Duration::from_secs(60), max_count, max_bytes }
    }

    fn submit(jobs: &Arc<Jobs>, r: JobRequest) -> Result<String, SubmitError> {
        jobs.submit(r, jobs.reserve()?)
    }

    #[test]
    fn queue_positions_and_cancel_on_last_watcher() {
        let jobs = Jobs::new(&[DeviceArg::Cpu], 4, keep(8, 1 << 20));
        let a = submit(&jobs, req()).unwrap();
        let b = submit(&jobs, req()).unwrap();
        let (rx_b, guard_b) = jobs.subscribe(&b).unwrap();
        assert_eq!(
            rx_b.borrow().event,
            JobEvent::Queued {
                device: "cpu".into(),
                ahead: 1
            }
        );
        let (_rx_a, guard_a) = jobs.subscribe(&a).unwrap();
        drop(guard_a);
        assert!(
            jobs.subscribe(&a).is_none(),
            "a queued job whose watcher left is gone"
        );
        assert_eq!(
            rx_b.borrow().event,
            JobEvent::Queued {
                device: "cpu".into(),
                ahead: 0
            }
        );
        drop(guard_b);
        assert!(jobs.is_empty());
    }

    #[test]
    fn full_queue_and_missing_device_are_refused() {
        let jobs = Jobs::new(&[DeviceArg::Cpu], 2, keep(8, 1 << 20));
        submit(&jobs, req()).unwrap();
        let mut r = req();
        r.device = DeviceArg::Cuda;
        assert!(matches!(submit(&jobs, r), Err(SubmitError::NoDevice(_))));
        // The refused upload gave its place back.
        submit(&jobs, req()).unwrap();
        assert!(matches!(jobs.reserve(), Err(SubmitError::QueueFull(2))));
    }

    /// An upload being read holds its place: the queue is full before its
    /// body is read, and its place comes back if it is dropped.
    #[test]
    fn uploads_in_progress_count_as_waiting() {
        let jobs = Jobs::new(&[DeviceArg::Cpu], 2, keep(8, 1 << 20));
        let slot = jobs.reserve().unwrap();
        submit(&jobs, req()).unwrap();
        assert!(matches!(jobs.reserve(), Err(SubmitError::QueueFull(2))));
        drop(slot);
        let slot = jobs.reserve().unwrap();
        jobs.submit(req(), slot).unwrap();
        assert!(matches!(jobs.reserve(), Err(SubmitError::QueueFull(2))));
    }

    /// Finished jobs past the count or the bytes go oldest first; the newest
    /// stays even alone above the bytes.
    #[test]
    fn results_are_capped_oldest_first() {
        let jobs = Jobs::new(&[DeviceArg::Cpu], 8, keep(2, 100));
        let w = Arc::clone(&jobs);
        let sizes = Arc::new(Mutex::new(vec![40usize, 40, 10, 500]));
        let s2 = Arc::clone(&sizes);
        std::thread::spawn(move || {
            w.work_loop(DeviceArg::Cpu, move |_, _| {
                let n = s2.lock().unwrap().remove(0);
                let out = JobOutput { result: vec![0; n], bicubic: vec![], qmap: vec![], hr: None, download_name: "a".into() };
                Ok((out, String::new(), 1, 1))
            })
        });
        let finished = |id: &str| jobs.status(id).is_some_and(|e| e.is_final());
        let mut ids = Vec::new();
        for _ in 0..4 {
            let id = submit(&jobs, req()).unwrap();
            let (_rx, _guard) = jobs.subscribe(&id).unwrap();
            let t = Instant::now();
            while !finished(&id) {
                assert!(t.elapsed() < Duration::from_secs(10));
                std::thread::sleep(Duration::from_millis(5));
            }
            ids.push(id);
        }
        let kept: Vec<bool> = ids.iter().map(|id| jobs.output(id).is_some()).collect();
        // 40, 40: both kept; +10: the first out (count 2); +500: alone above 100 bytes.
        assert_eq!(kept, [false, false, false, true]);
        assert_eq!(jobs.len(), 1);
    }

    #[test]
    fn elapsed_time_runs_while_loading() {
        let s = Status {
            event: JobEvent::Loading { elapsed_s: 0.0 },
            started: Some(Instant::now() - Duration::from_secs(3)),
        };
        match s.current() {
            JobEvent::Loading { elapsed_s } => assert!(elapsed_s >= 3.0),
            e => panic!("{e:?}"),
        }
    }
}
