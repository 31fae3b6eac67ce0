//! `patchscaler compare`: the background trainer's gate (see
//! `crate::eval::compare`) and its choice of what to train next.

use crate::eval::compare::{compare_dirs, stage_gaps, NOISE_SE, PROTOCOLS};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Evaluation folders (each with bicubic/, light/, realesrgan/ from
    /// `eval`): the base, then the candidate. Exit status 0 when the
    /// candidate is better, 1 when it is not.
    #[arg(num_args = 1..=2)]
    pub dirs: Vec<PathBuf>,
    /// With one folder: print each trainable stage and how many dB it is
    /// from its target, furthest first.
    #[arg(long)]
    pub plan: bool,
}

pub fn run(a: CompareArgs) -> Result<i32> {
    match (a.plan, a.dirs.as_slice()) {
        (true, [dir]) => {
            for (stage, gap) in stage_gaps(dir)? {
                println!("{stage} {gap:.3}");
            }
            Ok(0)
        }
        (false, [base, cand]) => {
            let v = compare_dirs(base, cand)?;
            print!("{}", v.table());
            let accepted = v.accepted();
            println!(
                "\n{}: {} against {} on {} (PatchScaler's images; a change counts beyond {NOISE_SE} standard errors of the per-image difference)",
                if accepted { "better" } else { "not better" },
                cand.display(),
                base.display(),
                PROTOCOLS.join(", "),
            );
            Ok(if accepted { 0 } else { 1 })
        }
        _ => bail!("give two evaluation folders (base, candidate), or one with --plan"),
    }
}
