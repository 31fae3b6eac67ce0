//! `patchscaler train dit`: Patch-DiT and its similarity-aware texture
//! encoder, with the AE, GRM, texture classifier T and RTM frozen.
//!
//! Loss (paper Eq. 7): MSE between the noise eps ~ N(0, I) and Patch-DiT's
//! prediction at x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t uniform in
//! [0, 1000), on aligned patch pairs (x0 from the HR latent, y0 from the GRM
//! on the degraded LR) with the top-K priors T(y0) retrieves from the RTM.
//! A model whose `dit.target` is `x0` or `v` (SPEC section 7) regresses that
//! instead, from the same x_t: the target is the model's, not the trainer's,
//! so that sampling reads the output the way it was trained.
//! Every t is trained, not only t < tau of the PGS groups: the `uniform`
//! baseline starts at 1000, and PGS's tau per group is a sampling choice.
//!
//! Choices (ours):
//! - the LR is plain bicubic for `--bicubic-prob` of the crops, the light
//!   degradation for `--light-prob`, Real-ESRGAN's for the rest (see
//!   `lr_pairs`), so clean and lightly degraded inputs are seen too;
//! - each crop gives `--patches-per-crop` pairs, as degrading, encoding and
//!   the GRM cost far more than one Patch-DiT step;
//! - AdamW at 1e-4 without weight decay and an EMA of 0.9999 as DiT, but the
//!   default EMA is 0.999 for runs of thousands, not 400k, of steps. The
//!   EMA weights, not the raw ones, go into `dit.safetensors` at the end,
//!   and validation uses them too;
//! - `--prompt-dropout p` zeroes the prompt of a share p of the patches so
//!   that `upscale --prompt zeros` ablates a model that has seen zeros; 0
//!   (the paper) by default.

mod pairs;
mod validation;

pub use pairs::{
    cut_pairs, cut_patches, drop_prompts, latent_pair, make_pairs, PairConfig, PatchPairs,
};
pub use validation::{ValSet, SAMPLE_STEPS, SAMPLE_TAU, VAL_TIMESTEPS};

use super::args::TrainArgs;
use super::lr_pairs::{LrMixFlags, PairLoader};
use super::reuse::ReusedPairs;
use super::trainer::{Losses, Step, Trainer};
use crate::diffusion::ddim::q_sample;
use crate::dit::PatchDiT;
use crate::model::files::save;
use crate::model::loaded::DIT_FILE;
use crate::model::Model;
use anyhow::{bail, Context, Result};
use clap::Args;
use rand::Rng;
use tch::{nn::VarStore, Kind, Tensor};

#[derive(Args, Debug)]
pub struct DitTrainArgs {
    #[command(flatten)]
    pub common: TrainArgs,
    /// Patch pairs cut from each HR crop (the batch is crops x this).
    #[arg(long, default_value_t = 4)]
    pub patches_per_crop: i64,
    #[command(flatten)]
    pub lr_mix: LrMixFlags,
    /// Share of patches trained with an all-zero texture prompt.
    #[arg(long, default_value_t = 0.0)]
    pub prompt_dropout: f64,
    /// EMA decay of the Patch-DiT weights (those are written to the model).
    #[arg(long, default_value_t = 0.999)]
    pub ema: f64,
    /// Steps each degraded crop batch serves, each with new patch places,
    /// timesteps and noise (the degradation is the slow part on a GPU).
    #[arg(long, default_value_t = 1)]
    pub reuse: u64,
}

pub fn run(a: DitTrainArgs) -> Result<i32> {
    check_shares(&a)?;
    let mut run = a.common.resolve(20_000, 4, 256, 1e-4)?;
    let device = run.options.device;
    let mut model = Model::load(&a.common.model, device, None)?;
    run.options.ema = Some(a.ema);
    run.options.adamw.weight_decay = 0.0;
    run.options.samples_per_step = run.crop.batch * a.patches_per_crop as usize;
    let crop = run.crop.size as i64;
    let (f, v, scale) = (
        model.ae.downsample_factor(),
        model.config.dit.input_size,
        model.config.scale,
    );
    if crop % (f * scale) != 0 || crop / f < v {
        bail!("--crop {crop}: must be a multiple of {} (AE factor x scale) and give at least {v} latent pixels ({} px)", f * scale, v * f);
    }
    for vs in [&mut model.ae_vs, &mut model.grm_vs, &mut model.texture_vs] {
        vs.freeze();
    }
    let pair_cfg = PairConfig {
        scale,
        mix: a.lr_mix.mix()?,
        patches_per_crop: a.patches_per_crop,
        prompt_dropout: a.prompt_dropout,
    };
    let reuse = a.reuse;
    // The parts that shape the Patch-DiT's training, not the sampling plan:
    // `calibrate` rewrites the model's PGS thresholds between the background
    // trainer's rounds, and the next round must resume, not refuse.
    let c = &model.config;
    let shape = (c.scale, &c.ae, &c.grm, &c.dit, &c.texture, &c.diffusion);
    let mut trainer = Trainer::new(run.options.clone(), &(shape, &pair_cfg, &run.crop, reuse))?;
    let loader = PairLoader::new(&run.train_images, run.crop.clone(), pair_cfg.lr_pairs(run.crop.seed))?;
    let mut batches = ReusedPairs::new(loader, reuse, trainer.start_step())?;

    let val_batches = run.val_crops()?;
    let val = ValSet::build(&model, &val_batches, &pair_cfg, run.options.seed ^ 0x5eed)?;
    // Validation reads the EMA weights through a second model.
    let mut eval_vs = VarStore::new(device);
    let eval_dit = PatchDiT::new(&eval_vs.root(), &model.config.dit)?;

    let ac = model.config.diffusion.alphas_cumprod();
    // The trainer holds the DiT's VarStore mutably while the step reads the
    // model; the PatchDiT's tensors share storage with it, so lend it out.
    let mut dit_vs = std::mem::replace(&mut model.dit_vs, VarStore::new(device));
    let m = &model;
    let step = |step: u64, rng: &mut rand_chacha::ChaCha8Rng| -> Result<Step> {
        let ((x0, y0), wait) = batches.get(step, |pair| latent_pair(m, &pair.hr, &pair.lr))?;
        let p = cut_pairs(m, x0, y0, &pair_cfg, rng)?;
        let n = p.x0.size()[0];
        let ts: Vec<i64> = (0..n)
            .map(|_| rng.random_range(0..ac.len() as i64))
            .collect();
        let t = Tensor::from_slice(&ts).to_device(device);
        let eps = p.x0.randn_like();
        let x_t = q_sample(&ac, &p.x0, &t, &eps)?;
        let abar: Vec<f64> = ts.iter().map(|&t| ac[t as usize]).collect();
        let target = m.config.dit.target.target(&p.x0, &eps, &abar)?;
        let tokens = m.dit.encode_texture(&p.priors, &p.sims);
        let pred = m.dit.forward(&x_t, &p.y0, &t.to_kind(Kind::Float), &tokens);
        let loss = (pred - target).square().mean(Kind::Float);
        let values = vec![("loss".into(), loss.shallow_clone())];
        Ok(Step { loss, values, data_wait: wait })
    };
    let validate = |_step: u64, emas: &[super::Ema]| -> Result<Losses> {
        let ema = emas
            .first()
            .context("the DiT trainer always keeps an EMA")?;
        eval_vs
            .copy(ema.shadow())
            .context("copying the EMA weights for validation")?;
        val.evaluate(&eval_dit, &ac)
    };
    trainer.run(&mut [("dit", &mut dit_vs)], step, validate)?;
    model.dit_vs = dit_vs;

    super::ema::load_latest(&mut model.dit_vs, &run.options.out_dir, "dit")?;
    let out = a.common.model.join(DIT_FILE);
    save(&model.dit_vs, &out, false)?;
    println!(
        "dit: trained to step {} in {} ({} val patches); wrote the EMA weights (decay {}) to {}",
        trainer.steps_done,
        run.options.out_dir.display(),
        val.len(),
        a.ema,
        out.display()
    );
    Ok(0)
}

fn check_shares(a: &DitTrainArgs) -> Result<()> {
    a.lr_mix.mix()?;
    for (name, p) in [
        ("--prompt-dropout", a.prompt_dropout),
    ] {
        if !(0.0..=1.0).contains(&p) {
            bail!("{name} {p}: must lie in [0, 1]");
        }
    }
    if a.patches_per_crop < 1 {
        bail!(
            "--patches-per-crop {}: must be at least 1",
            a.patches_per_crop
        );
    }
    if !(0.0..1.0).contains(&a.ema) {
        bail!("--ema {}: the decay must lie in [0, 1)", a.ema);
    }
    Ok(())
}
