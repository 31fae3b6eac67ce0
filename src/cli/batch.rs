//! Batches under a cluster scheduler: a deterministic share of the inputs
//! per task (`--shard I/N`), no work redone after a restart
//! (`--skip-existing`), and one JSON line per image (`--manifest`).
//!
//! Outputs are renamed into place only when complete (`crate::atomic`), so an
//! existing output is a finished one: a killed task, restarted with
//! `--skip-existing`, loses at most the image it was working on.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Task `index` of `count` (counted from 0, as SLURM array indices and
/// Kubernetes' JOB_COMPLETION_INDEX are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// Every `count`-th input of the list sorted by path, starting at
    /// `index`: the same list gives every task a disjoint share, together
    /// all of it, whatever order the shell or the file system gave.
    /// Interleaving, not contiguous ranges, so that folders of large and
    /// small images spread over the tasks.
    pub fn select(&self, inputs: &[PathBuf]) -> Vec<PathBuf> {
        let mut sorted = inputs.to_vec();
        sorted.sort();
        sorted.dedup();
        sorted
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, p)| p)
            .collect()
    }
}

/// What became of one input.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Done,
    /// Its outputs were there already (`--skip-existing`).
    Exists,
    /// Refused by the preflight or failed while computing; see `error`.
    Failed,
}

/// One manifest line.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    #[serde(serialize_with = "path_text")]
    pub input: PathBuf,
    #[serde(serialize_with = "opt_path_text")]
    pub output: Option<PathBuf>,
    /// (width, height) of the input and of the output, where known.
    pub input_size: Option<(i64, i64)>,
    pub output_size: Option<(i64, i64)>,
    /// Patches per PGS group, by group name, in the plan's order.
    pub groups: Vec<(String, usize)>,
    pub seconds: f64,
    pub status: Status,
    pub error: Option<String>,
}

impl Record {
    pub fn new(input: &Path, output: Option<&Path>, status: Status) -> Self {
        Self {
            input: input.to_path_buf(),
            output: output.map(Path::to_path_buf),
            input_size: None,
            output_size: None,
            groups: Vec::new(),
            seconds: 0.0,
            status,
            error: None,
        }
    }
}

/// A path as a JSON string, as messages show it: JSON holds no bytes that
/// are not UTF-8, and serde's own path rule refuses them, which failed the
/// whole run at its first such name.
fn path_text<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::imageio::shown(p))
}

fn opt_path_text<S: serde::Serializer>(p: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => path_text(p, s),
        None => s.serialize_none(),
    }
}

/// An append-only JSON-lines file, flushed and synced after each line, so a
/// killed task's manifest lists everything it finished.
pub struct Manifest {
    path: PathBuf,
    file: std::fs::File,
}

impl Manifest {
    /// Opens `path` for appending (a restarted task adds to its manifest).
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            bail!("{}: --manifest names a folder, not a file", path.display());
        }
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the manifest for appending", path.display()))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    pub fn write(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("{}: cannot write the manifest", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_the_sorted_list() {
        let inputs: Vec<PathBuf> = ["d/c.png", "a.png", "b.jpg", "d/a.png", "e.png"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let mut seen: Vec<PathBuf> = Vec::new();
        for index in 0..3 {
            let part = Shard { index, count: 3 }.select(&inputs);
            // The order the inputs came in does not matter.
            let mut rev = inputs.clone();
            rev.reverse();
            assert_eq!(part, Shard { index, count: 3 }.select(&rev));
            seen.extend(part);
        }
        seen.sort();
        let mut all = inputs.clone();
        all.sort();
        assert_eq!(seen, all);
        assert_eq!(Shard { index: 0, count: 1 }.select(&inputs), all);
    }

    #[test]
    fn shard_flags_parse_or_say_what_is_expected() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1/0", "-1/3", "1", "a/b", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn manifest_appends_one_json_line_per_record() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m").join("manifest.jsonl");
        let mut r = Record::new(Path::new("in/a.png"), Some(Path::new("out/a_x4.png")), Status::Done);
        r.input_size = Some((16, 12));
        r.groups = vec![("simple".into(), 3)];
        Manifest::open(&p).unwrap().write(&r).unwrap();
        let mut f = Record::new(Path::new("in/b.png"), None, Status::Failed);
        f.error = Some("in/b.png: truncated".into());
        Manifest::open(&p).unwrap().write(&f).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["status"], "done");
        assert_eq!(lines[0]["input_size"], serde_json::json!([16, 12]));
        assert_eq!(lines[1]["status"], "failed");
        assert_eq!(lines[1]["error"], "in/b.png: truncated");
        assert!(Manifest::open(d.path()).is_err());
    }

    #[test]
    #[cfg(unix)]
    fn a_name_that_is_not_utf8_is_written_escaped() {
        use std::os::unix::ffi::OsStrExt;
        let name = Path::new(std::ffi::OsStr::from_bytes(b"in/caf\xe9.png"));
        let line = serde_json::to_value(Record::new(name, None, Status::Failed)).unwrap();
        assert_eq!(line["input"], r"in/caf\xe9.png");
    }
}
