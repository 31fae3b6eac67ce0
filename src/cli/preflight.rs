//! Everything about a batch that can be checked without computing, checked
//! for the whole batch before the model loads: each input's header and data
//! decode, its size against `--memory-limit`, its outputs' names (distinct,
//! not an input, not the other flag's file), formats that can store its
//! colour type, and folders that can be written. A problem costs one line
//! naming the image, seconds after the start rather than after the upscale.

use super::batch::Shard;
use super::inputs::collect_inputs;
use crate::app::memory::{self, admit};
pub use crate::app::Job;
use super::outputs::{output_stems, resolve, scale_suffix, Target};
use crate::imageio::load::{decode_checked, Header};
use crate::imageio::save::{output_format, Layout};
use crate::imageio::{io_error, shown};
use anyhow::{anyhow, Result};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// All of a job's outputs there already (renamed into place only when complete).
fn outputs_exist(job: &Job) -> bool {
    job.outputs().all(|p| p.is_file())
}

/// The jobs that passed; those whose outputs exist already
/// (`--skip-existing`); one line per input (or path) that did not pass.
#[derive(Debug, Default)]
pub struct Plan {
    pub jobs: Vec<Job>,
    pub existing: Vec<Job>,
    pub skipped: Vec<Skip>,
}

/// A refusal: the input it concerns (none for a path that yields no image)
/// and the one line that says why.
#[derive(Debug)]
pub struct Skip {
    pub input: Option<PathBuf>,
    pub error: String,
}

/// Which share of the batch this process does (see `batch`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Share {
    pub shard: Option<Shard>,
    /// Leave out jobs whose outputs all exist (outputs are renamed into
    /// place only when complete, so an existing one is a finished one).
    pub skip_existing: bool,
}

/// The per-image part: header, memory limit, and a full decode (the data
/// must be whole). Every error names `path`. Never panics on any bytes.
pub fn check_input(path: &Path, scale: f64, limit_mib: u64) -> Result<Header> {
    let (header, _) = decode_checked(path, limit_mib.saturating_mul(1 << 20), admit(path, scale, limit_mib))?;
    Ok(header)
}

/// Plans the batch. An `-o`/`--qmap` that fits no rule is an error for the
/// whole run; everything else is one skipped line per input. Output names
/// come from the whole list, so that every shard names an image as an
/// unsharded run would; only this shard's inputs are then checked.
pub fn plan(
    given: &[PathBuf],
    output: &Path,
    qmap: Option<&Path>,
    scale: f64,
    limit_mib: u64,
    share: Share,
) -> Result<Plan> {
    let (inputs, errors) = collect_inputs(given);
    let mut skipped: Vec<Skip> = errors.into_iter().map(|error| Skip { input: None, error }).collect();
    let mut existing = Vec::new();
    let mine: Option<HashSet<PathBuf>> = share.shard.map(|s| s.select(&inputs).into_iter().collect());
    // By what was given, not what was found: a lone missing file keeps
    // its file-shaped -o and gets its own error line.
    let one_file = given.len() == 1 && !given[0].is_dir();
    let out = resolve("-o", output, one_file)?;
    let qmap = qmap.map(|q| resolve("--qmap", q, one_file)).transpose()?;
    let stems = output_stems(&inputs);
    let sources: Vec<PathBuf> = inputs.iter().map(|p| normal(p)).collect();
    let mut folders = FolderCheck::default();
    let mut taken: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut jobs = Vec::new();
    for (input, stem) in inputs.iter().zip(stems) {
        if mine.as_ref().is_some_and(|m| !m.contains(input)) {
            continue;
        }
        let job = stem.map_err(anyhow::Error::msg).and_then(|stem| {
            let job = Job {
                input: input.clone(),
                output: place(&out, &stem, &format!("_x{}.png", scale_suffix(scale))),
                qmap: qmap.as_ref().map(|q| place(q, &stem, "_qmap.png")),
            };
            if share.skip_existing && outputs_exist(&job) {
                return Ok(job);
            }
            let header = check_input(input, scale, memory::usable_mib(limit_mib, job.qmap.is_some()))?;
            check_output(&job.output, Layout::of(header.color), &sources, &mut folders)?;
            if let Some(q) = &job.qmap {
                check_output(q, Layout::of(image::ColorType::Rgb8), &sources, &mut folders)?;
                if normal(q) == normal(&job.output) {
                    anyhow::bail!("{}: -o and --qmap name the same file {}", shown(input), shown(q));
                }
            }
            for p in job.outputs() {
                if let Some(other) = taken.get(&normal(p)) {
                    anyhow::bail!("{}: its output {} is also written for {}", shown(input), shown(p), shown(other));
                }
            }
            Ok(job)
        });
        match job {
            Ok(job) => {
                for p in job.outputs() {
                    taken.insert(normal(p), job.input.clone());
                }
                if share.skip_existing && outputs_exist(&job) {
                    existing.push(job);
                } else {
                    jobs.push(job);
                }
            }
            Err(e) => skipped.push(Skip { input: Some(input.clone()), error: format!("{e:#}") }),
        }
    }
    Ok(Plan { jobs, existing, skipped })
}

/// The file `target` names, or `stem` + `suffix` in its folder (the stem's
/// own bytes: see `output_stems`).
fn place(target: &Target, stem: &OsStr, suffix: &str) -> PathBuf {
    match target {
        Target::File(f) => f.clone(),
        Target::Folder(d) => {
            let mut name = stem.to_os_string();
            name.push(suffix);
            d.join(name)
        }
    }
}

/// An output path: a known format that can store `layout`, not an input,
/// not a folder, in a folder that exists or can be made, and can be written.
fn check_output(out: &Path, layout: Layout, sources: &[PathBuf], folders: &mut FolderCheck) -> Result<()> {
    if sources.contains(&normal(out)) {
        anyhow::bail!("{}: refusing to overwrite an input image", shown(out));
    }
    if out.is_dir() {
        anyhow::bail!("{}: is a folder, not an output file", shown(out));
    }
    layout.storable_in(output_format(out)?, out)?;
    folders.writable(crate::atomic::parent_dir(out)).map_err(|e| anyhow!("{}: cannot be written: {e}", shown(out)))
}

/// Writability per folder, probed once: a temporary file in the folder, or
/// in its nearest existing ancestor when it is still to be created.
#[derive(Default)]
struct FolderCheck(HashMap<PathBuf, Result<(), String>>);

impl FolderCheck {
    fn writable(&mut self, dir: &Path) -> Result<(), String> {
        self.0.entry(dir.to_path_buf()).or_insert_with(|| probe_folder(dir)).clone()
    }
}

fn probe_folder(dir: &Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(format!("{}: not a folder", shown(at))),
            // ENOTDIR: a file further up; the walk finds and names it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                at = at.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            }
            Err(e) => return Err(format!("{:#}", io_error(at, &e))),
        }
    }
    tempfile::Builder::new()
        .prefix(".patchscaler-check-")
        .tempfile_in(at)
        .map(drop)
        .map_err(|e| format!("{:#}", io_error(at, &e)))
}

/// A path made comparable: absolute, links resolved as far as it exists.
fn normal(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let abs = std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf());
    match (abs.parent().and_then(|d| d.canonicalize().ok()), abs.file_name()) {
        (Some(d), Some(n)) => d.join(n),
        _ => abs,
    }
}
