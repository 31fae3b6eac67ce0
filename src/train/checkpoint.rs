//! Checkpoints that resume exactly and are never left half-written.
//!
//! A checkpoint is a folder: the weights of each named part, the optimizer
//! state, the EMA weights, and `state.json` (step, the trainer's RNG
//! position, the data position, a hash of the config), written last. It is
//! built in `checkpoint.tmp`, then swapped in by renames: live -> `.old`,
//! `.tmp` -> live, delete `.old`. A kill at any point leaves either a
//! complete live folder or a complete `.old` one; a leftover `.tmp` is
//! never read and is removed on the next look.

use anyhow::{bail, Context, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: u64,
    pub rng: RngState,
    /// Batches the data loader has handed out.
    pub data_position: u64,
    /// Hash of the run's config; resuming under another config is refused.
    pub config_hash: String,
    /// Training time so far, so throughput and the log's clock continue.
    pub elapsed_s: f64,
}

/// A ChaCha RNG's exact position: seed, stream and word position (the u128
/// is kept as a decimal string; JSON numbers cannot hold it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: String,
}

impl RngState {
    pub fn capture(rng: &ChaCha8Rng) -> Self {
        RngState { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    pub fn restore(&self) -> Result<ChaCha8Rng> {
        use rand::SeedableRng;
        let word_pos: u128 = self.word_pos.parse().with_context(|| format!("bad RNG word position {:?}", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

/// The checkpoint slot of one run: `<out_dir>/checkpoint`.
pub struct Checkpoint {
    live: PathBuf,
}

impl Checkpoint {
    pub fn in_dir(out_dir: &Path) -> Self {
        Checkpoint { live: out_dir.join("checkpoint") }
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        self.live.with_extension(suffix)
    }

    /// Writes a checkpoint: `write_files` fills the folder it is given (part
    /// weights, optimizer, EMA), then the state goes in last and the folder
    /// is swapped in atomically.
    pub fn save(&self, state: &TrainState, write_files: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let tmp = self.sibling("tmp");
        let old = self.sibling("old");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).with_context(|| format!("removing stale {}", tmp.display()))?;
        }
        fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        write_files(&tmp)?;
        let json = serde_json::to_string_pretty(state)?;
        fs::write(tmp.join(STATE_FILE), json).with_context(|| format!("writing {}", tmp.join(STATE_FILE).display()))?;
        sync_folder(&tmp)?;
        if self.live.exists() {
            if old.exists() {
                fs::remove_dir_all(&old).with_context(|| format!("removing stale {}", old.display()))?;
            }
            fs::rename(&self.live, &old).with_context(|| format!("moving {} aside", self.live.display()))?;
        }
        fs::rename(&tmp, &self.live).with_context(|| format!("moving {} into place", tmp.display()))?;
        if let Some(parent) = self.live.parent() {
            sync_dir(parent)?;
        }
        if old.exists() {
            fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        Ok(())
    }

    /// The newest complete checkpoint (folder and state), if any. A
    /// half-written `.tmp` folder is removed, never read.
    pub fn latest(&self) -> Result<Option<(PathBuf, TrainState)>> {
        let tmp = self.sibling("tmp");
        if tmp.exists() {
            tracing::warn!("removing the unfinished checkpoint {}", tmp.display());
            fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        }
        let mut best: Option<(PathBuf, TrainState)> = None;
        for folder in [self.live.clone(), self.sibling("old")] {
            let Some(state) = read_state(&folder)? else { continue };
            if best.as_ref().is_none_or(|(_, b)| state.step > b.step) {
                best = Some((folder, state));
            }
        }
        Ok(best)
    }
}

fn read_state(folder: &Path) -> Result<Option<TrainState>> {
    let path = folder.join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(state) => Ok(Some(state)),
        Err(e) => bail!("{}: corrupt checkpoint state: {e}", path.display()),
    }
}

/// Flushes every file of the folder, then the folder itself, so the rename
/// that publishes it cannot land before its contents.
fn sync_folder(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        fs::File::open(&path).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", path.display()))?;
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    fn state(step: u64) -> TrainState {
        let rng = ChaCha8Rng::seed_from_u64(step);
        TrainState { step, rng: RngState::capture(&rng), data_position: step, config_hash: "h".into(), elapsed_s: 1.5 }
    }

    fn save(ckpt: &Checkpoint, step: u64) {
        ckpt.save(&state(step), |dir| Ok(fs::write(dir.join("weights.bin"), step.to_le_bytes())?)).unwrap();
    }

    #[test]
    fn rng_position_round_trips() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        rng.set_stream(3);
        for _ in 0..7 {
            rng.next_u32();
        }
        let json = serde_json::to_string(&RngState::capture(&rng)).unwrap();
        let mut restored = serde_json::from_str::<RngState>(&json).unwrap().restore().unwrap();
        assert_eq!((0..5).map(|_| rng.next_u64()).collect::<Vec<_>>(), (0..5).map(|_| restored.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn newest_save_replaces_the_old_one() {
        let out = tempfile::tempdir().unwrap();
        let ckpt = Checkpoint::in_dir(out.path());
        assert!(ckpt.latest().unwrap().is_none());
        save(&ckpt, 5);
        save(&ckpt, 10);
        let (dir, found) = ckpt.latest().unwrap().unwrap();
        assert_eq!(found, state(10));
        assert_eq!(fs::read(dir.join("weights.bin")).unwrap(), 10u64.to_le_bytes());
        let names: Vec<_> = fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["checkpoint"], "no temporary folders are left behind");
    }

    #[test]
    fn half_written_and_interrupted_saves_are_survived() {
        let out = tempfile::tempdir().unwrap();
        let ckpt = Checkpoint::in_dir(out.path());
        save(&ckpt, 5);
        // Killed while writing step 10: weights half there, no state yet.
        fs::create_dir(out.path().join("checkpoint.tmp")).unwrap();
        fs::write(out.path().join("checkpoint.tmp/weights.bin"), [1u8, 2]).unwrap();
        let (dir, found) = ckpt.latest().unwrap().unwrap();
        assert_eq!((dir, found.step), (out.path().join("checkpoint"), 5));
        assert!(!out.path().join("checkpoint.tmp").exists(), "the unfinished folder is removed");
        // Killed between the two renames: only the `.old` folder is complete.
        fs::rename(out.path().join("checkpoint"), out.path().join("checkpoint.old")).unwrap();
        assert_eq!(ckpt.latest().unwrap().unwrap().1.step, 5);
        save(&ckpt, 15);
        assert_eq!(ckpt.latest().unwrap().unwrap().1.step, 15);
        assert!(!out.path().join("checkpoint.old").exists());
    }
}
