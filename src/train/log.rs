//! The CSV log of a run: one row per logged value, appended as training goes.
//!
//! Long format (`step,split,name,value,lr,samples_per_s,elapsed_s`) so that
//! trainers with different loss names, and validation with its own metrics,
//! share one file. On resume the rows past the checkpoint's step are dropped
//! first: the steps after it are run again and would otherwise appear twice.

use anyhow::{Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const HEADER: &str = "step,split,name,value,lr,samples_per_s,elapsed_s";

#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub step: u64,
    /// "train" or "val".
    pub split: String,
    pub name: String,
    pub value: f64,
    pub lr: f64,
    pub samples_per_s: f64,
    pub elapsed_s: f64,
}

pub struct CsvLog {
    path: PathBuf,
    file: File,
}

impl CsvLog {
    /// Opens the log of a run that continues after `resumed_step` (0 for a
    /// fresh run): rows of later steps are removed, earlier ones kept.
    pub fn open(path: &Path, resumed_step: u64) -> Result<Self> {
        let kept: Vec<LogRow> = if path.exists() { read_log(path)? } else { Vec::new() };
        let mut text = format!("{HEADER}\n");
        for row in kept.iter().filter(|r| r.step <= resumed_step) {
            text.push_str(&format_row(row));
        }
        let tmp = path.with_extension("csv.tmp");
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        let file = OpenOptions::new().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
        Ok(CsvLog { path: path.to_path_buf(), file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends rows and flushes, so a killed run keeps what it logged.
    pub fn append(&mut self, rows: &[LogRow]) -> Result<()> {
        let text: String = rows.iter().map(format_row).collect();
        self.file.write_all(text.as_bytes()).and_then(|_| self.file.flush()).with_context(|| format!("appending to {}", self.path.display()))
    }
}

fn format_row(r: &LogRow) -> String {
    format!("{},{},{},{},{},{:.3},{:.3}\n", r.step, r.split, r.name, r.value, r.lr, r.samples_per_s, r.elapsed_s)
}

/// Every row of a log file.
pub fn read_log(path: &Path) -> Result<Vec<LogRow>> {
    let mut rd = csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    rd.records()
        .enumerate()
        .map(|(i, record)| {
            let at = || format!("{}: line {}", path.display(), i + 2);
            let f = record.with_context(at)?;
            let field = |k: usize| f.get(k).unwrap_or_default();
            anyhow::ensure!(f.len() == 7, "{}: expected 7 fields, found {}", at(), f.len());
            let num = |k: usize| field(k).parse::<f64>().with_context(|| format!("{}: {:?}", at(), field(k)));
            Ok(LogRow {
                step: field(0).parse().with_context(|| format!("{}: step {:?}", at(), field(0)))?,
                split: field(1).to_string(),
                name: field(2).to_string(),
                value: num(3)?,
                lr: num(4)?,
                samples_per_s: num(5)?,
                elapsed_s: num(6)?,
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn row(step: u64, split: &str, value: f64) -> LogRow {
        LogRow { step, split: split.into(), name: "loss".into(), value, lr: 1e-4, samples_per_s: 12.5, elapsed_s: step as f64 }
    }

    #[test]
    fn rows_round_trip_and_resume_drops_later_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let mut log = CsvLog::open(&path, 0).unwrap();
        let rows: Vec<LogRow> = (1..=6).map(|s| row(s, if s % 3 == 0 { "val" } else { "train" }, 1.0 / s as f64)).collect();
        log.append(&rows).unwrap();
        drop(log);
        assert_eq!(read_log(&path).unwrap(), rows);
        assert!(fs::read_to_string(&path).unwrap().starts_with(HEADER));

        let mut resumed = CsvLog::open(&path, 4).unwrap();
        resumed.append(&[row(5, "train", 0.7)]).unwrap();
        let steps: Vec<u64> = read_log(&path).unwrap().iter().map(|r| r.step).collect();
        assert_eq!(steps, [1, 2, 3, 4, 5], "no duplicate rows after resume");
        assert_eq!(CsvLog::open(&path, 0).map(|_| read_log(&path).unwrap().len()).unwrap(), 0, "a fresh run starts over");
    }

    #[test]
    fn malformed_rows_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        fs::write(&path, format!("{HEADER}\n1,train,loss,0.5,0.1,1,1\n2,train,loss,oops,0.1,1,1\n")).unwrap();
        let err = format!("{:#}", read_log(&path).unwrap_err());
        assert!(err.contains("line 3"), "{err}");
    }
}
