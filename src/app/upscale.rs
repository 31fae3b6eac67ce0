//! One image through the method, from its file to its output file: the
//! memory plan decides whole or in regions, the pipeline runs, the result
//! is resampled to the asked scale, the alpha channel follows bicubically,
//! and the output keeps the input's layout (bit depth, gray, alpha).

use super::memory::{self, Fit};
use crate::imageio::{load::load_checked, save::save_image, shown};
use crate::model::Model;
use crate::pipeline::{self, qmap_image::{half_size, qmap_figure}, regions, SamplingOptions};
use crate::resize::bicubic::upsample_bicubic;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;

/// One image to upscale and where its results go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
    pub qmap: Option<PathBuf>,
}

impl Job {
    /// Every file the job writes: the output, then the qmap figure.
    pub fn outputs(&self) -> impl Iterator<Item = &PathBuf> {
        std::iter::once(&self.output).chain(&self.qmap)
    }
}

/// `--scale`, and the scale `serve`'s page sends: one rule for both. Below
/// 0.5 the result is a thumbnail named after a long fraction (8x8 at
/// x0.000000001 gave 1x1).
pub fn parse_scale(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=16.0).contains(&v) => Ok(v),
        Ok(_) => Err("out of range: give a number from 0.5 to 16".into()),
        Err(_) => Err("not a number: give one from 0.5 to 16".into()),
    }
}

/// The two summaries of one finished image (the default's and --verbose's)
/// and what its manifest line records.
pub struct Done {
    pub compact: String,
    pub detailed: String,
    pub input_size: (i64, i64),
    pub output_size: (i64, i64),
    pub groups: Vec<(String, usize)>,
}

/// One image to its output (and its group figure to its qmap): the one
/// path of `upscale` and the web page, so the page's results are the
/// command's bytes.
pub fn upscale_one(
    model: &Model,
    job: &Job,
    opts: &SamplingOptions,
    scale: f64,
    limit_mib: u64,
    inputs: &[PathBuf],
) -> Result<Done> {
    let (input, out) = (job.input.as_path(), job.output.as_path());
    let start = Instant::now();
    let limit_mib = memory::usable_mib(limit_mib, job.qmap.is_some());
    // Checked again: the file may have changed since the preflight.
    let img = load_checked(input, limit_mib.saturating_mul(1 << 20), memory::admit(input, scale, limit_mib))?;
    let (h, w) = (img.height(), img.width());
    let align = regions::alignment(model.config.scale, model.ae.downsample_factor(), opts.pgs.stride as i64);
    let mut opts = opts.clone();
    let (wu, hu) = (w as u32, h as u32);
    let estimate = match memory::plan(wu, hu, scale, limit_mib, align) {
        Ok(Fit::Whole) => memory::needed_bytes(wu, hu, scale),
        Ok(Fit::Regions(tiles)) => {
            opts.regions = Some(tiles);
            memory::tiled_bytes(wu, hu, scale, &tiles, align)
        }
        Err(e) => bail!("{}: {e}", shown(input)),
    };
    let up =
        pipeline::upscale(model, &img.rgb, &opts).with_context(|| format!("{}", shown(input)))?;
    let sr = pipeline::rescale(&up.sr, h, w, scale)?;
    let (oh, ow) = (sr.size()[2], sr.size()[3]);
    let alpha = match img.alpha.as_ref() {
        Some(a) => Some(upsample_bicubic(a, oh as usize, ow as usize)?.clamp(0.0, 1.0)),
        None => None,
    };
    save_image(&sr, alpha.as_ref(), &img, out, inputs)?;
    if let Some(q) = &job.qmap {
        let fig = qmap_figure(&up, &img.rgb, half_size(up.sr.size()[2], up.sr.size()[3]))?;
        let like = crate::imageio::load::from_tensor(fig.shallow_clone(), q);
        save_image(&fig, None, &like, q, inputs)?;
    }
    let groups: Vec<(String, usize)> =
        opts.pgs.groups.iter().map(|g| g.name.clone()).zip(up.stats.patches_per_group.iter().copied()).collect();
    let group_counts: Vec<String> = groups.iter().map(|(g, n)| format!("{g}={n}")).collect();
    let stages: Vec<String> = up
        .timings
        .iter()
        .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    let ratio = up.stats.evaluations as f64 / up.stats.uniform_evaluations.max(1) as f64;
    let total = start.elapsed().as_secs_f64();
    let head = format!("{} -> {}: {w}x{h} -> {ow}x{oh}", shown(input), shown(out));
    let regions = match opts.regions {
        Some(t) if h.max(w) > t.tile => format!(" in regions of {} px (--memory-limit {limit_mib} MiB)", t.tile),
        _ => String::new(),
    };
    Ok(Done {
        input_size: (w, h),
        output_size: (ow, oh),
        groups,
        compact: format!("{head}{regions} in {total:.1}s ({ratio:.2}x the uniform denoiser work)"),
        detailed: format!(
            "{head}{regions} | patches {} ({}) | denoiser evals {} vs uniform {} ({:.2}x) | {} | memory estimate {} MiB | total {total:.2}s",
            up.assignment.len(),
            group_counts.join(" "),
            up.stats.evaluations,
            up.stats.uniform_evaluations,
            ratio,
            stages.join(", "),
            memory::mib(estimate),
        ),
    })
}
