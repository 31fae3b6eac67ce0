//! One benchmark configuration (precision x sampling) and the report that
//! gathers them: stage times, peak memory, and PGS's speed-up over uniform
//! sampling (paper Table 4's ratio).

use super::flops::stage_flops;
use super::memory::peak_rss_mib;
use crate::model::Model;
use crate::pipeline::{upscale, SamplingOptions};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub seconds: f64,
}

/// What one configuration measured, as its child process prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigRun {
    /// "f32" or "bf16".
    pub precision: String,
    /// "pgs" or "uniform".
    pub sampling: String,
    /// Pipeline order; "dit" is the Patch-DiT sampling of all groups.
    pub stages: Vec<Stage>,
    /// Wall time of the whole upscale, output copied back to the CPU.
    pub total_seconds: f64,
    /// Peak resident set of the process (host memory), MiB.
    pub peak_rss_mib: Option<f64>,
    pub denoiser_evaluations: usize,
    pub patches_per_group: Vec<usize>,
    /// Counted from the weights (`eval::flops`), in 1e9.
    #[serde(default)]
    pub gflops: f64,
}

/// Upscales `lr` `warmup` times untimed, then once timed.
pub fn run_config(model: &Model, lr: &tch::Tensor, opts: &SamplingOptions, precision: &str, sampling: &str, warmup: usize) -> Result<ConfigRun> {
    for _ in 0..warmup {
        upscale(model, lr, opts)?;
    }
    let start = Instant::now();
    let up = upscale(model, lr, opts)?;
    let _ = up.sr.to_device(tch::Device::Cpu);
    let total_seconds = start.elapsed().as_secs_f64();
    Ok(ConfigRun {
        precision: precision.into(),
        sampling: sampling.into(),
        stages: up.timings.iter().map(|(n, d)| Stage { name: n.clone(), seconds: d.as_secs_f64() }).collect(),
        total_seconds,
        peak_rss_mib: peak_rss_mib(),
        denoiser_evaluations: up.stats.evaluations,
        patches_per_group: up.stats.patches_per_group.clone(),
        gflops: stage_flops(model, up.sr.size()[2], up.sr.size()[3]).total(
            up.stats.patches_per_group.iter().sum(),
            up.stats.evaluations,
            crate::pipeline::bicubic_detail::decoder_passes(opts.bicubic_detail, model.ae.is_exact()),
        ) / 1e9,
    })
}

/// The whole benchmark, as written to JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// What the input is (a file, a validation crop, or procedural).
    pub input: String,
    /// LR (width, height) and output (width, height).
    pub lr_size: [i64; 2],
    pub output_size: [i64; 2],
    pub device: String,
    pub configs: Vec<ConfigRun>,
    /// Per precision: PGS total time / uniform total time (lower is faster).
    pub pgs_to_uniform: BTreeMap<String, f64>,
    /// Configurations whose process failed, with the reason.
    pub errors: Vec<String>,
}

impl BenchReport {
    /// Fills `pgs_to_uniform` from the configurations present.
    pub fn compute_ratios(&mut self) {
        self.pgs_to_uniform.clear();
        for c in self.configs.iter().filter(|c| c.sampling == "pgs") {
            if let Some(u) = self.configs.iter().find(|u| u.sampling == "uniform" && u.precision == c.precision) {
                self.pgs_to_uniform.insert(c.precision.clone(), c.total_seconds / u.total_seconds.max(1e-12));
            }
        }
    }

    /// Stages down, configurations across.
    pub fn table(&self) -> String {
        let mut stages: Vec<&str> = Vec::new();
        for c in &self.configs {
            for s in &c.stages {
                if !stages.contains(&s.name.as_str()) {
                    stages.push(&s.name);
                }
            }
        }
        let mut out = format!("{:<18}", "stage (s)");
        for c in &self.configs {
            let _ = write!(out, " {:>14}", format!("{} {}", c.precision, c.sampling));
        }
        out.push('\n');
        let mut row = |label: &str, cell: &dyn Fn(&ConfigRun) -> String| {
            let _ = write!(out, "{label:<18}");
            for c in &self.configs {
                let _ = write!(out, " {:>14}", cell(c));
            }
            out.push('\n');
        };
        for &s in &stages {
            row(s, &|c| c.stages.iter().find(|x| x.name == s).map(|x| format!("{:.3}", x.seconds)).unwrap_or_else(|| "-".into()));
        }
        row("total", &|c| format!("{:.3}", c.total_seconds));
        row("peak RSS (MiB)", &|c| c.peak_rss_mib.map(|m| format!("{m:.0}")).unwrap_or_else(|| "-".into()));
        row("denoiser evals", &|c| c.denoiser_evaluations.to_string());
        row("GFLOPs", &|c| format!("{:.0}", c.gflops));
        for (p, r) in &self.pgs_to_uniform {
            let _ = writeln!(out, "PGS / uniform runtime ({p}): {r:.3}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(precision: &str, sampling: &str, total: f64) -> ConfigRun {
        ConfigRun {
            precision: precision.into(),
            sampling: sampling.into(),
            stages: vec![Stage { name: "encode".into(), seconds: 0.5 }],
            total_seconds: total,
            peak_rss_mib: Some(100.0),
            denoiser_evaluations: 10,
            patches_per_group: vec![1],
            gflops: 1.0,
        }
    }

    #[test]
    fn ratio_pairs_configs_of_the_same_precision() {
        let mut r = BenchReport {
            input: "x".into(),
            lr_size: [8, 8],
            output_size: [32, 32],
            device: "cpu".into(),
            configs: vec![config("f32", "pgs", 1.0), config("f32", "uniform", 4.0), config("bf16", "pgs", 2.0)],
            pgs_to_uniform: BTreeMap::new(),
            errors: vec![],
        };
        r.compute_ratios();
        assert_eq!(r.pgs_to_uniform.len(), 1);
        assert_eq!(r.pgs_to_uniform["f32"], 0.25);
        let t = r.table();
        assert!(t.contains("f32 uniform") && t.contains("encode") && t.contains("(f32): 0.250"), "{t}");
    }
}
