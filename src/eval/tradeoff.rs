//! Paper Fig. 6: quality against runtime for several sampling plans. Uniform
//! plans trade steps for speed on every patch alike; PGS presets spend steps
//! where the Q-map says they are needed, and should sit above that curve.

use super::methods::{run, Method};
use super::pairs::Pair;
use super::score::{mean, score};
use crate::app::presets::{plan, Overrides, Preset};
use crate::metrics::NiqeParams;
use crate::model::Model;
use crate::pgs::groups::PgsConfig;
use crate::pipeline::SamplingOptions;
use anyhow::{Context, Result};
use std::path::Path;

/// Uniform (tau, N) plans: the paper's (1000, 20) and cheaper ones.
pub const UNIFORM_PLANS: [(usize, usize); 5] = [(1000, 20), (1000, 10), (700, 14), (700, 6), (400, 8)];

#[derive(Clone, Debug)]
pub struct Setting {
    pub label: String,
    /// "uniform" or "pgs": the plot draws each family as one series.
    pub family: &'static str,
    pub pgs: PgsConfig,
}

/// The uniform plans, then the PGS presets, on the model's patch grid.
pub fn settings(base: &PgsConfig) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    for (tau, n) in UNIFORM_PLANS {
        let o = Overrides { uniform: true, tau: Some(vec![tau]), steps: Some(vec![n]), ..Default::default() };
        out.push(Setting { label: format!("U{tau}/{n}"), family: "uniform", pgs: plan(Preset::Balanced, &o, base)? });
    }
    for (preset, name) in [(Preset::Fast, "fast"), (Preset::Balanced, "balanced"), (Preset::Quality, "quality")] {
        out.push(Setting { label: format!("PGS {name}"), family: "pgs", pgs: plan(preset, &Overrides::default(), base)? });
    }
    Ok(out)
}

/// One setting's averages over the images.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub label: String,
    pub family: String,
    pub seconds: f64,
    pub psnr: f64,
    pub niqe: Option<f64>,
}

/// Runs every setting on every pair (same seed, same LRs) and averages.
pub fn measure(model: &Model, pairs: &[Pair], settings: &[Setting], base: &SamplingOptions, params: &NiqeParams) -> Result<Vec<Point>> {
    let crop = model.config.scale as u32;
    let mut points = Vec::new();
    for s in settings {
        let opts = SamplingOptions { pgs: s.pgs.clone(), ..base.clone() };
        let mut scores = Vec::new();
        for p in pairs {
            let out = run(Method::PatchScaler, model, &p.lr, &opts).with_context(|| format!("{} on {}", s.label, p.name))?;
            scores.push(score(&out.sr, &p.hr, crop, params, out.seconds)?);
        }
        let m = mean(&scores);
        points.push(Point { label: s.label.clone(), family: s.family.into(), seconds: m.seconds, psnr: m.psnr, niqe: m.niqe });
    }
    Ok(points)
}

pub const CSV_HEADER: &str = "setting,family,seconds,psnr_y,niqe";

pub fn write_csv(points: &[Point], path: &Path) -> Result<()> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER.split(','))?;
    for p in points {
        let niqe = p.niqe.map(|v| format!("{v:.6}")).unwrap_or_default();
        out.write_record([p.label.clone(), p.family.to_string(), format!("{:.6}", p.seconds), format!("{:.6}", p.psnr), niqe])?;
    }
    std::fs::write(path, out.into_inner()?).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_cover_uniform_plans_and_pgs_presets() {
        let s = settings(&PgsConfig::paper()).unwrap();
        assert_eq!(s.len(), UNIFORM_PLANS.len() + 3);
        assert_eq!((s[0].pgs.groups[0].tau, s[0].pgs.groups[0].steps), (1000, 20));
        assert!(s.iter().filter(|x| x.family == "pgs").all(|x| x.pgs.groups.len() == 3));
        assert_eq!(s.iter().find(|x| x.label == "PGS balanced").unwrap().pgs, PgsConfig::paper());
    }
}
