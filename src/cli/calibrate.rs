//! `patchscaler calibrate`: sets a model's PGS confidence thresholds so that
//! held-out patches split into target shares (see `pgs::calibrate` for why).
//! Both evaluation protocols' LRs are pooled, as the model serves both.

use super::upscale::{device, load_model, DeviceArg, Precision};
use crate::eval::{Degradation, PairSource};
use crate::model::loaded::CONFIG_FILE;
use crate::model::ModelConfig;
use crate::pgs::calibrate::{quantile, realised_shares, thresholds_for_shares};
use crate::pgs::groups::qmap;
use crate::pgs::PatchGrid;
use crate::app::Settings;
use crate::pipeline::restore;
use crate::train::ImageFolder;
use anyhow::{ensure, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Model folder whose model.toml gets the thresholds.
    #[arg(long)]
    pub model: PathBuf,
    /// Held-out HR images: a manifest.csv (its val split) or a folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Target share of patches per group, most confident first; the last
    /// group takes the rest (default for three groups: 0.5,0.25).
    #[arg(long, value_delimiter = ',')]
    pub shares: Option<Vec<f64>>,
    /// Centre-crop each HR to this side (px), as `eval --crop-hr`.
    #[arg(long, default_value_t = 256)]
    pub crop_hr: i64,
    /// Seed of the Real-ESRGAN LRs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the thresholds without writing model.toml.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

pub fn run(a: CalibrateArgs) -> Result<i32> {
    let model = load_model(Some(&a.model), None, device(a.device)?, Precision::F32)?;
    let mut cfg: ModelConfig = model.config.clone();
    let groups = cfg.pgs.groups.len();
    ensure!(
        groups >= 2,
        "{}: its PGS plan has one group; nothing to calibrate",
        a.model.display()
    );
    let shares = a.shares.clone().unwrap_or_else(|| default_shares(groups));
    ensure!(
        shares.len() + 1 == groups,
        "--shares: {} values for {groups} groups (give one fewer than groups)",
        shares.len()
    );
    let folder = if a.data.is_dir() && !a.data.join("manifest.csv").is_file() {
        ImageFolder::open(&a.data, None)?
    } else {
        ImageFolder::open(&a.data, Some("val"))?
    };
    ensure!(!folder.is_empty(), "{}: no images", a.data.display());

    // The model's own plan and colour fix: what `balanced` samples with.
    let opts = Settings::default().sampling_options(&model)?;
    let v = cfg.pgs.patch as i64;
    let mut q_all = Vec::new();
    let mut per_protocol = Vec::new();
    for degradation in [Degradation::Bicubic, Degradation::Realesrgan] {
        let source = PairSource {
            lr_dir: None,
            degradation,
            seed: a.seed,
            scale: cfg.scale,
            crop_hr: Some(a.crop_hr),
        };
        let mut q = Vec::new();
        for path in folder.files() {
            let pair = source.load(path)?;
            let r = tch::no_grad(|| restore(&model, &pair.lr, &opts, v))
                .with_context(|| format!("{}", path.display()))?;
            let grid = PatchGrid::new(
                r.log_conf.size()[2] as usize,
                r.log_conf.size()[3] as usize,
                cfg.pgs.patch,
                cfg.pgs.stride,
            )?;
            q.extend(qmap(&r.log_conf, &grid)?);
        }
        q_all.extend_from_slice(&q);
        per_protocol.push((degradation, q));
    }
    let thresholds = thresholds_for_shares(&q_all, &shares)?;

    println!(
        "{} patches from {} images x 2 protocols; Q quantiles:",
        q_all.len(),
        folder.len()
    );
    for (name, q) in std::iter::once(("all".to_string(), &q_all)).chain(
        per_protocol
            .iter()
            .map(|(d, q)| (format!("{d:?}").to_lowercase(), q)),
    ) {
        // -log Q: Q itself prints as 1.00000000 for most patches of a trained GRM.
        let qs: Vec<String> = [1.0, 0.9, 0.75, 0.5, 0.25, 0.1, 0.0]
            .iter()
            .map(|&p| format!("{:.2e}", -quantile(q, p)))
            .collect();
        let got: Vec<String> = realised_shares(q, &thresholds)
            .iter()
            .map(|s| format!("{:.0}%", 100.0 * s))
            .collect();
        println!(
            "  {name:<10} -log Q at Q's max/90/75/50/25/10/min {}  groups {}",
            qs.join(" "),
            got.join(" / ")
        );
    }
    let names: Vec<&str> = cfg.pgs.groups.iter().map(|g| g.name.as_str()).collect();
    println!(
        "log thresholds ({}): {}",
        names.join(" > "),
        thresholds
            .iter()
            .map(|t| format!("{t:e}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if a.dry_run {
        return Ok(0);
    }
    for (g, t) in cfg.pgs.groups.iter_mut().zip(&thresholds) {
        g.min_log_conf_exclusive = Some(*t);
        g.min_conf_exclusive = t.exp();
    }
    cfg.pgs.validate()?;
    let path = a.model.join(CONFIG_FILE);
    cfg.save(&path)?;
    println!("wrote {}", path.display());
    Ok(0)
}

/// Half the patches simple, a quarter medium, a quarter hard for the
/// paper's three groups (ours); equal shares otherwise.
fn default_shares(groups: usize) -> Vec<f64> {
    if groups == 3 {
        return vec![0.5, 0.25];
    }
    vec![1.0 / groups as f64; groups - 1]
}
