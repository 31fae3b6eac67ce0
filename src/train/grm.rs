//! `patchscaler train grm`: the Global Restoration Module (paper Sec. 3.2).
//!
//! Loss: the paper's Eq. 6 (`ConfidenceLoss`, lambda 0.3, eta 0.2) between
//! GRM(y_LR) and x_HR, where y_LR is the latent of the torch-bicubic x4
//! upsampled LR and x_HR the latent of the HR crop. The AE is frozen and
//! encodes under `no_grad`: the GRM must restore exactly the latents the
//! pipeline gives it and Patch-DiT is trained on, so the AE may not move.
//! Inputs are built exactly as `pipeline::upscale` builds them (bicubic up,
//! clamp to [0, 1], map to [-1, 1], `encode`), so train and test agree.
//!
//! Pairs (see `lr_pairs`): plain bicubic LR for `--bicubic-prob` (0.2), the
//! light degradation for `--light-prob` (0.3), Real-ESRGAN's for the rest,
//! made on background threads. Each pair batch
//! serves `--reuse` steps (2), every time under a fresh random flip and
//! 90-degree turn applied to HR and LR alike: a flipped degradation is as
//! likely as the original, so the pair stays a valid sample, and the
//! degradation's cost is shared. Flips are applied to the images, not the
//! latents, because the encoder is not equivariant to them. Measured on the
//! cpu preset (batch 8, crop 128, 2 cores shared with other jobs): steps
//! that wait for a fresh pair batch run at ~5 samples/s, reusing steps at
//! ~9; with `--reuse 1` the degradation thread would set the pace.
//!
//! Validation, on fixed seeded val pairs: the loss, the latent L1, the mean
//! confidence, PSNR-RGB of decode(y_HR) against the HR crop, and two fixed
//! references on the same crops: the bicubic x4 upsampling (what the GRM
//! must beat) and decode(x_HR) (the AE's ceiling, what it cannot beat).
//!
//! The weights validated and written are an EMA (0.999, as Real-ESRGAN's
//! training in BasicSR): on the exact latent, at a constant 4e-4, the raw
//! weights' validation PSNR swung by 0.6 dB from one check to the next
//! (29.42 -> 28.78 dB 250 steps later), so whichever step a run happened to
//! end on decided what shipped.

use super::args::{load_frozen_ae, load_part_if_present, TrainArgs};
use super::lr_pairs::{degrade_batch, LrMixFlags, Pair, PairConfig, PairLoader};
use super::reuse::ReusedPairs;
use super::trainer::{Losses, Step, Trainer};
use crate::autoencoder::Autoencoder;
use crate::grm::{ConfidenceLoss, Grm};
use crate::model::files::save;
use crate::model::loaded::GRM_FILE;
use crate::pipeline::coarse::{coarse_latents, Coarse};
use anyhow::{bail, Context, Result};
use clap::Args;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{nn::VarStore, Device, Kind, Tensor};

/// Below this HR side the degradation's 21-tap blurs do not fit after its
/// first random shrink (x0.15): 11 px / 0.15 = 73 px, rounded up.
const MIN_CROP: u32 = 80;

#[derive(Args, Debug)]
pub struct GrmTrainArgs {
    #[command(flatten)]
    pub common: TrainArgs,
    #[command(flatten)]
    pub lr_mix: LrMixFlags,
    /// Steps each degraded pair batch serves (with fresh flips and turns).
    #[arg(long, default_value_t = 2)]
    pub reuse: u64,
    /// lambda of Eq. 6.
    #[arg(long, default_value_t = 0.3)]
    pub lambda: f64,
    /// eta of Eq. 6.
    #[arg(long, default_value_t = 0.2)]
    pub eta: f64,
    /// EMA decay of the GRM weights (those are validated and written to the
    /// model); 0 writes the raw weights.
    #[arg(long, default_value_t = 0.999)]
    pub ema: f64,
}

/// What the frozen AE makes of one pair batch.
struct Latents {
    /// encode(HR): the target x_HR.
    x_hr: Tensor,
    /// encode(bicubic x4 of LR): the GRM's input y_LR.
    y_lr: Tensor,
    /// The bicubic x4 image itself, in [0, 1].
    bicubic: Tensor,
}

fn encode_pair(ae: &Autoencoder, hr: &Tensor, lr: &Tensor) -> Result<Latents> {
    tch::no_grad(|| {
        let x_hr = ae.encode(&(hr * 2.0 - 1.0)).to_kind(Kind::Float);
        let Coarse { bicubic, y_lr, .. } =
            coarse_latents(ae, None, lr, hr.size()[2], hr.size()[3])?;
        Ok(Latents {
            x_hr,
            y_lr,
            bicubic,
        })
    })
}

/// The same random flip and quarter turn for each sample's HR and LR.
fn random_dihedral(pair: &Pair, rng: &mut ChaCha8Rng) -> (Tensor, Tensor) {
    let (mut hrs, mut lrs) = (Vec::new(), Vec::new());
    for i in 0..pair.hr.size()[0] {
        let (flip, turns) = (rng.random_bool(0.5), rng.random_range(0..4i64));
        let apply = |x: Tensor| {
            let x = if flip { x.flip([-1]) } else { x };
            x.rot90(turns, [-2, -1])
        };
        hrs.push(apply(pair.hr.get(i)));
        lrs.push(apply(pair.lr.get(i)));
    }
    (Tensor::stack(&hrs, 0), Tensor::stack(&lrs, 0))
}

/// Mean over the batch of each image's PSNR in dB (RGB, peak 1).
fn psnr_rgb(a: &Tensor, b: &Tensor) -> f64 {
    let mse = (a - b)
        .square()
        .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float)
        .clamp_min(1e-10);
    (mse.log10() * -10.0).mean(Kind::Float).double_value(&[])
}

fn decode_image(ae: &Autoencoder, z: &Tensor) -> Tensor {
    ((ae.decode(z).to_kind(Kind::Float) + 1.0) / 2.0).clamp(0.0, 1.0)
}

/// HR crop side: LR sides must be whole and the AE must tile the crop.
fn check_crop(crop: u32, scale: i64, ae_factor: i64) -> Result<()> {
    let c = crop as i64;
    if crop < MIN_CROP || c % scale != 0 || c % ae_factor != 0 {
        bail!("--crop {crop}: the GRM trainer needs a crop of at least {MIN_CROP} px, a multiple of the scale {scale} and of the AE factor {ae_factor}");
    }
    Ok(())
}

pub fn run(a: GrmTrainArgs) -> Result<i32> {
    let cfg = a.common.model_config()?;
    if !(0.0..1.0).contains(&a.ema) {
        bail!("--ema {}: the decay must lie in [0, 1)", a.ema);
    }
    let mut run = a.common.resolve(4000, 8, 128, 2e-4)?;
    run.options.ema = (a.ema > 0.0).then_some(a.ema);
    check_crop(run.crop.size, cfg.scale, cfg.ae.downsample_factor())?;
    let loss_fn = ConfidenceLoss {
        lambda: a.lambda,
        eta: a.eta,
    };

    let dev = run.options.device;
    let mut ae_vs = VarStore::new(dev);
    let ae = Autoencoder::new(&ae_vs.root(), &cfg.ae);
    load_frozen_ae(&mut ae_vs, &a.common.model)?;
    let mut vs = VarStore::new(dev);
    let grm = Grm::new(&vs.root(), &cfg.grm)?;
    let grm_path = a.common.model.join(GRM_FILE);
    load_part_if_present(&mut vs, &grm_path)?;
    // Validation runs the average, in its own copy of the network.
    let mut eval_vs = VarStore::new(dev);
    let eval_grm = Grm::new(&eval_vs.root(), &cfg.grm)?;

    let pair_cfg = PairConfig {
        scale: cfg.scale,
        mix: a.lr_mix.mix()?,
        ..PairConfig::realesrgan_x4(run.crop.seed)
    };
    let setup = (&cfg.ae, &cfg.grm, &loss_fn, &pair_cfg, a.reuse, &run.crop);
    let mut trainer = Trainer::new(run.options.clone(), &setup)?;
    let loader = PairLoader::new(&run.train_images, run.crop.clone(), pair_cfg.clone())?;
    let mut batches = ReusedPairs::new(loader, a.reuse, trainer.start_step())?;
    let val = validation_set(&ae, run.val_crops()?, &pair_cfg, dev)?;

    let step = |step: u64, rng: &mut ChaCha8Rng| -> Result<Step> {
        let on_device = |pair: Pair| {
            Ok(Pair { hr: pair.hr.to_device(dev), lr: pair.lr.to_device(dev), bicubic: pair.bicubic })
        };
        let (pair, wait) = batches.get(step, on_device)?;
        let (hr, lr) = random_dihedral(pair, rng);
        let lat = encode_pair(&ae, &hr, &lr)?;
        let (y_hr, logit) = grm.forward_with_logit(&lat.y_lr)?;
        let loss = loss_fn.compute(&y_hr, &logit, &lat.x_hr)?;
        let l1 = tch::no_grad(|| (&y_hr - &lat.x_hr).abs().mean(Kind::Float));
        let conf = tch::no_grad(|| logit.sigmoid().mean(Kind::Float));
        let values = vec![
            ("loss".into(), loss.shallow_clone()),
            ("l1".into(), l1),
            ("confidence".into(), conf),
        ];
        Ok(Step { loss, values, data_wait: wait })
    };
    let validate = |_step: u64, emas: &[super::Ema]| -> Result<Losses> {
        let grm = match emas.first() {
            Some(ema) => {
                eval_vs.copy(ema.shadow()).context("copying the EMA weights for validation")?;
                &eval_grm
            }
            None => &grm,
        };
        let mut sums = [0.0; 4];
        for v in &val {
            let (y_hr, logit) = grm.forward_with_logit(&v.latents.y_lr)?;
            sums[0] += loss_fn
                .compute(&y_hr, &logit, &v.latents.x_hr)?
                .double_value(&[]);
            sums[1] += (&y_hr - &v.latents.x_hr)
                .abs()
                .mean(Kind::Float)
                .double_value(&[]);
            sums[2] += logit.sigmoid().mean(Kind::Float).double_value(&[]);
            sums[3] += psnr_rgb(&decode_image(&ae, &y_hr), &v.hr);
        }
        let n = val.len().max(1) as f64;
        let reference = |f: fn(&ValBatch) -> f64| val.iter().map(f).sum::<f64>() / n;
        Ok(vec![
            ("loss".into(), sums[0] / n),
            ("l1".into(), sums[1] / n),
            ("confidence".into(), sums[2] / n),
            ("psnr_rgb".into(), sums[3] / n),
            ("psnr_bicubic".into(), reference(|v| v.psnr_bicubic)),
            ("psnr_ae_ceiling".into(), reference(|v| v.psnr_ae)),
        ])
    };
    trainer.run(&mut [("grm", &mut vs)], step, validate)?;

    if a.ema > 0.0 {
        super::ema::load_latest(&mut vs, &run.options.out_dir, "grm")?;
    }
    save(&vs, &grm_path, false)?;
    println!(
        "grm: trained to step {} in {}; wrote {}{}",
        trainer.steps_done,
        run.options.out_dir.display(),
        if a.ema > 0.0 { format!("the EMA weights (decay {}) to ", a.ema) } else { String::new() },
        grm_path.display()
    );
    Ok(0)
}

/// One fixed validation batch with its references, computed once.
struct ValBatch {
    hr: Tensor,
    latents: Latents,
    psnr_bicubic: f64,
    psnr_ae: f64,
}

/// The run's fixed val crops (see `Run::val_crops`) degraded with
/// the training mixture, so the numbers cover all three protocols.
fn validation_set(
    ae: &Autoencoder,
    hrs: Vec<Tensor>,
    pairs: &PairConfig,
    dev: Device,
) -> Result<Vec<ValBatch>> {
    let pairs = PairConfig {
        seed: pairs.seed ^ 0x5eed,
        ..pairs.clone()
    };
    tch::no_grad(|| {
        hrs.iter()
            .enumerate()
            .map(|(k, hr)| {
                let pair = degrade_batch(hr, k as u64, &pairs)
                    .context("degrading the validation crops")?;
                let pair = Pair {
                    hr: pair.hr.to_device(dev),
                    lr: pair.lr.to_device(dev),
                    bicubic: pair.bicubic,
                };
                let latents = encode_pair(ae, &pair.hr, &pair.lr)?;
                let psnr_bicubic = psnr_rgb(&latents.bicubic, &pair.hr);
                let psnr_ae = psnr_rgb(&decode_image(ae, &latents.x_hr), &pair.hr);
                Ok(ValBatch {
                    hr: pair.hr,
                    latents,
                    psnr_bicubic,
                    psnr_ae,
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dihedral_moves_hr_and_lr_alike() {
        // LR = 2x2 mean pooling of HR commutes with flips and turns: after
        // the transform it must still be the pooling of the transformed HR.
        let hr = Tensor::rand([6, 3, 8, 8], (Kind::Float, Device::Cpu));
        let lr = hr.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
        let pair = Pair {
            hr: hr.shallow_clone(),
            lr,
            bicubic: vec![false; 6],
        };
        let (h2, l2) = random_dihedral(&pair, &mut ChaCha8Rng::seed_from_u64(4));
        let pooled = h2.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
        assert!((pooled - &l2).abs().max().double_value(&[]) < 1e-6);
        assert!(
            !h2.equal(&hr),
            "six samples, none transformed: the draw is broken"
        );
    }

    #[test]
    fn psnr_of_a_known_error() {
        let a = Tensor::zeros([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        let b = a.full_like(0.1); // mse 0.01 -> 20 dB
        assert!((psnr_rgb(&a, &b) - 20.0).abs() < 1e-4);
    }

    #[test]
    fn crops_the_degradation_or_the_ae_cannot_take_are_rejected() {
        assert!(check_crop(128, 4, 8).is_ok());
        assert!(check_crop(64, 4, 8).is_err(), "too small for the blurs");
        assert!(
            check_crop(132, 4, 8).is_err(),
            "not a multiple of the AE factor"
        );
        assert!(check_crop(90, 4, 2).is_err(), "LR side not whole");
    }
}
