//! The PatchScaler inference path, top to bottom (SPEC section 1):
//! bicubic x4 -> E -> GRM -> PGS (texture prompt, Patch-DiT per group) ->
//! merge -> D (plus the bicubic detail D cannot represent) -> colour fix ->
//! detail gate. With the exact latent, E and D are a reshape and the detail
//! is zero.

pub mod bicubic_detail;
pub mod coarse;
pub mod detail_gate;
pub mod options;
pub mod progress;
pub mod prompt;
pub mod qmap_image;
pub mod region_grid;
pub mod regions;

pub use options::{PromptMode, SamplingOptions, Y0Source};
pub use progress::{Progress, ProgressFn};
pub use regions::RegionTiles;
use progress::Tracker;

use crate::autoencoder::tiled::encode_tiled;
use bicubic_detail::decode_with_bicubic_detail;
use crate::dit::model::PromptKv;
use crate::model::Model;
use crate::pgs::groups::qmap;
use crate::pgs::patches::PatchGrid;
use crate::pgs::sampler::{denoiser_calls, sample_groups, SampleStats};
use crate::resize::bicubic::upsample_bicubic;
use anyhow::Result;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

/// Everything one upscale produced, for the CLI summary, `eval` and `bench`.
pub struct Upscaled {
    /// (1, 3, H*s, W*s) in [0, 1].
    pub sr: Tensor,
    /// Confidence map C at latent resolution, (1, 1, H/f, W/f), padded area cropped.
    /// log C per latent pixel, float64 (see `Restored::log_conf`).
    pub confidence: Tensor,
    pub grid: PatchGrid,
    /// Group index of every patch, in grid order.
    pub assignment: Vec<usize>,
    pub stats: SampleStats,
    pub timings: Vec<(String, Duration)>,
    /// Latent rows/cols that hold the image (the rest is padding).
    pub valid_latent: (i64, i64),
}

/// Runs the pipeline on one image `lr` (1, 3, h, w) in [0, 1]: whole, or
/// region by region when `opts.regions` is set and the image is larger
/// than one region (see `regions`).
pub fn upscale(model: &Model, lr: &Tensor, opts: &SamplingOptions) -> Result<Upscaled> {
    tch::no_grad(|| match &opts.regions {
        Some(tiles) if lr.size()[2] > tiles.tile || lr.size()[3] > tiles.tile => {
            regions::upscale_regions(model, lr, opts, tiles)
        }
        _ => upscale_inner(model, lr, opts, None, &mut Tracker::new(opts.progress.clone(), UPSCALE_STAGES)),
    })
}

/// The pipeline up to the GRM (bicubic x4 -> E -> GRM), shared by the full
/// upscale, the coarse image of `eval` and the confidence of `calibrate`.
pub struct Restored {
    /// The bicubic x4 input, (1, 3, h*s, w*s) in [0, 1].
    pub bicubic: Tensor,
    /// E(bicubic) and GRM's coarse HR latent, float32, padded to whole latent
    /// pixels and at least `min_latent` of them per side.
    pub y_lr: Tensor,
    pub y_hr: Tensor,
    /// log C, (1, 1, same H, W), float64, from the GRM logit as
    /// log_sigmoid(logit): a trained GRM puts C within 1e-9 of 1 on most
    /// pixels, where C itself rounds to exactly 1 in float32 (and to 1 within
    /// 1/256 in bf16), so PGS would group by rounding; log C keeps every
    /// logit's information down to 1e-300.
    pub log_conf: Tensor,
    /// The LR's (h, w).
    pub lr_size: (i64, i64),
}

/// Runs bicubic, E and the GRM on `lr` (1, 3, h, w) in [0, 1].
pub fn restore(
    model: &Model,
    lr: &Tensor,
    opts: &SamplingOptions,
    min_latent: i64,
) -> Result<Restored> {
    let mut tracker = Tracker::new(opts.progress.clone(), RESTORE_STAGES);
    restore_timed(model, lr, opts, min_latent, &mut Stopwatch::start(model.device, &mut tracker))
}

fn restore_timed(
    model: &Model,
    lr: &Tensor,
    opts: &SamplingOptions,
    min_latent: i64,
    clock: &mut Stopwatch<'_>,
) -> Result<Restored> {
    let lr = lr.to_device(model.device).to_kind(Kind::Float);
    let (h, w) = (lr.size()[2], lr.size()[3]);
    let s = model.config.scale;
    let bicubic = upsample_bicubic(&lr, (h * s) as usize, (w * s) as usize)?.clamp(0.0, 1.0);
    // Pad (replicate) to whole latent pixels and at least `min_latent` of them.
    let f = model.ae.downsample_factor();
    let ph = ((h * s + f - 1) / f).max(min_latent) * f;
    let pw = ((w * s + f - 1) / f).max(min_latent) * f;
    let padded = (&bicubic * 2.0 - 1.0).replication_pad2d([0, pw - w * s, 0, ph - h * s]);
    clock.lap("bicubic");

    // The encoder and the GRM run in float32 in every precision (see
    // `Model::set_kind`): they decide the groups, which must not depend on it.
    let y_lr = encode_tiled(&model.ae, &padded, &opts.ae_tiles)?.to_kind(Kind::Float);
    clock.lap("encode");

    let (y_hr, logit) = model.grm.forward_with_logit(&y_lr)?;
    let log_conf = logit.to_kind(Kind::Double).log_sigmoid();
    clock.lap("grm");
    Ok(Restored {
        bicubic,
        y_lr,
        y_hr: y_hr.to_kind(Kind::Float),
        log_conf,
        lr_size: (h, w),
    })
}

/// The whole pipeline on `lr`. `noise`: the start noise field of this
/// image's latent, when it is a region cut from a larger one (else drawn
/// from the seed); `tracker` counts its stages and calls.
pub(crate) fn upscale_inner(
    model: &Model,
    lr: &Tensor,
    opts: &SamplingOptions,
    noise: Option<&Tensor>,
    tracker: &mut Tracker,
) -> Result<Upscaled> {
    let cfg = &model.config;
    let dev = model.device;
    let kind = model.kind();
    let mut clock = Stopwatch::start(dev, tracker);
    let v = opts.pgs.patch as i64;
    let Restored {
        bicubic,
        y_lr,
        y_hr,
        log_conf,
        lr_size: (h, w),
    } = restore_timed(model, lr, opts, v, &mut clock)?;
    let s = cfg.scale;
    let f = model.ae.downsample_factor();
    let (lh, lw) = (y_lr.size()[2], y_lr.size()[3]);
    let y0_latent = match opts.y0 {
        Y0Source::Coarse => y_hr,
        Y0Source::LrLatent => y_lr.shallow_clone(),
    };

    let grid = PatchGrid::new(lh as usize, lw as usize, v as usize, opts.pgs.stride)?;
    let y0 = grid.extract(&y0_latent)?;
    let q = qmap(&log_conf, &grid)?;
    let mut assignment = opts.pgs.assign(&q);
    if let Some(gate) = &opts.detail_gate {
        // A patch whose output the gate replaces by bicubic everywhere needs
        // no long trajectory: it goes to the easiest group.
        let valid = ((h * s + f - 1) / f, (w * s + f - 1) / f);
        let m = gate.mask(lr, valid.0, valid.1)?.replication_pad2d([0, lw - valid.1, 0, lh - valid.0]);
        let open = grid.extract(&m)?.amax([1i64, 2, 3].as_slice(), false).to_device(tch::Device::Cpu);
        for (g, open) in assignment.iter_mut().zip(Vec::<f32>::try_from(open)?) {
            if open == 0.0 {
                *g = 0;
            }
        }
    }
    let ac = cfg.diffusion.alphas_cumprod();
    clock.progress.add_total(denoiser_calls(&assignment, &opts.pgs, &ac, opts.max_batch)? as u64);
    let tokens = prompt::texture_tokens(model, &y0, opts)?;
    clock.lap("texture prompt");

    let progress = &mut *clock.progress;
    // The sampler runs every step of one batch before the next batch, its
    // patches still stepping first, so the prompt's cross-attention keys and
    // values are computed once per batch and narrowed as patches finish.
    let mut batch_kv: Option<(Vec<usize>, PromptKv)> = None;
    let mut denoise = |x_t: &Tensor, y0: &Tensor, t: &Tensor, idx: &[usize]| -> Tensor {
        if !matches!(&batch_kv, Some((cached, _)) if cached.starts_with(idx)) {
            let index = Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(dev);
            batch_kv = Some((idx.to_vec(), model.dit.prompt_kv(&tokens.index_select(0, &index))));
        }
        let (cached, full) = batch_kv.as_ref().expect("set above");
        let narrowed;
        let kv = if cached.len() == idx.len() {
            full
        } else {
            narrowed = full.narrow(idx.len() as i64);
            &narrowed
        };
        let output = model
            .dit
            .forward_kv(&x_t.to_kind(kind), &y0.to_kind(kind), &t.to_device(dev), kv)
            .to_kind(Kind::Float);
        progress.tick("denoise");
        output
    };
    let field = match noise {
        Some(n) => {
            anyhow::ensure!(n.size() == y0_latent.size(), "region noise {:?} for a latent of {:?}", n.size(), y0_latent.size());
            n.shallow_clone()
        }
        None => noise_field(opts.seed, &y0_latent.size()),
    };
    let start = grid.extract(&field)?;
    let (x0, stats) = sample_groups(
        &y0,
        &start,
        &assignment,
        &opts.pgs,
        &ac,
        opts.max_batch,
        cfg.dit.target,
        &mut denoise,
    )?;
    clock.record("dit".to_string(), stats.time);
    clock.restart();
    let latent = grid.merge(&x0)?;
    clock.lap("merge");

    let sr = decode_with_bicubic_detail(model, &latent, &bicubic, &y_lr, opts.bicubic_detail, &opts.ae_tiles)?;
    clock.lap("decode");

    let sr = finish(&sr, &bicubic, lr, opts)?;
    clock.lap("color fix");

    let valid = ((h * s + f - 1) / f, (w * s + f - 1) / f);
    Ok(Upscaled {
        sr,
        confidence: log_conf,
        grid,
        assignment,
        stats,
        timings: clock.laps,
        valid_latent: valid,
    })
}

/// The start noise of the whole latent, drawn on the CPU from the seed alone
/// (so every device and batch split gets the same values); each patch's start
/// is cut from it, so overlapping patches start alike on their overlap
/// instead of averaging trajectories from unrelated noise at the merge.
pub fn noise_field(seed: u64, latent_size: &[i64]) -> Tensor {
    crate::pgs::sampler::patch_noise(seed, 0, latent_size)
}

/// Stages `restore` reports (bicubic, encode, grm) and the whole upscale's
/// (those, texture prompt, merge, decode, colour fix) besides its DiT calls.
const RESTORE_STAGES: u64 = 3;
pub(crate) const UPSCALE_STAGES: u64 = RESTORE_STAGES + 4;

/// Wall time per stage, in pipeline order. Each lap waits for the device
/// first: CUDA work is queued asynchronously, and without the wait a stage's
/// time would show up in whichever later stage first reads a value back.
struct Stopwatch<'a> {
    device: tch::Device,
    progress: &'a mut Tracker,
    last: Instant,
    laps: Vec<(String, Duration)>,
}

impl<'a> Stopwatch<'a> {
    fn start(device: tch::Device, progress: &'a mut Tracker) -> Self {
        crate::device::synchronize(device);
        Self {
            device,
            progress,
            last: Instant::now(),
            laps: Vec::new(),
        }
    }
    fn lap(&mut self, name: &str) {
        crate::device::synchronize(self.device);
        self.laps.push((name.to_string(), self.last.elapsed()));
        self.progress.tick(name);
        self.last = Instant::now();
    }
    fn record(&mut self, name: String, d: Duration) {
        self.laps.push((name, d));
    }
    fn restart(&mut self) {
        self.last = Instant::now();
    }
}

/// The paper's "coarse HR" image: the GRM's latent decoded, then the same
/// colour fix as the full pipeline, i.e. PatchScaler with the diffusion
/// stage left out. `eval` shows it to measure what the diffusion adds.
pub fn coarse_image(model: &Model, lr: &Tensor, opts: &SamplingOptions) -> Result<Tensor> {
    tch::no_grad(|| {
        let r = restore(model, lr, opts, 1)?;
        let coarse = decode_with_bicubic_detail(model, &r.y_hr, &r.bicubic, &r.y_lr, opts.bicubic_detail, &opts.ae_tiles)?;
        finish(&coarse, &r.bicubic, lr, opts)
    })
}

/// The steps after the decoder that every result goes through: the colour
/// fix against bicubic, then the detail gate.
fn finish(decoded: &Tensor, bicubic: &Tensor, lr: &Tensor, opts: &SamplingOptions) -> Result<Tensor> {
    let fixed = opts.colorfix.apply(decoded, bicubic)?.clamp(0.0, 1.0);
    match &opts.detail_gate {
        Some(gate) => gate.apply(&fixed, bicubic, lr),
        None => Ok(fixed),
    }
}

/// Resamples the native-scale result to another factor (SPEC: scales other
/// than the native one come from resampling the native result).
pub fn rescale(sr: &Tensor, lr_h: i64, lr_w: i64, scale: f64) -> Result<Tensor> {
    let oh = ((lr_h as f64) * scale).round().max(1.0) as i64;
    let ow = ((lr_w as f64) * scale).round().max(1.0) as i64;
    if oh == sr.size()[2] && ow == sr.size()[3] {
        return Ok(sr.shallow_clone());
    }
    if oh < sr.size()[2] {
        // Downscaling: area averaging avoids the aliasing bicubic would add.
        return Ok(
            crate::resize::bicubic::downsample_area(sr, oh as usize, ow as usize)?.clamp(0.0, 1.0),
        );
    }
    Ok(upsample_bicubic(sr, oh as usize, ow as usize)?.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests;
