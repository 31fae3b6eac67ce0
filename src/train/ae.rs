//! `patchscaler train ae`: the autoencoder of presets without a pretrained VAE.
//!
//! Loss (ours): L1 on pixels + 0.5 * L1 on image gradients (finite
//! differences; it keeps edges sharp, which plain L1 under-weights) + a KL
//! term of weight 1e-6 on the posterior, as SD's VAE, which keeps the latent
//! near a unit Gaussian without blurring. The decoder sees a sample
//! z = mean + std * eps, so it learns to tolerate the noise PGS leaves.
//! After training, `scaling_factor` is set to 1 / std of the latent on
//! validation crops (SD's 0.18215 was found the same way), so diffusion
//! works on unit-variance latents; it is written into `model.toml`.
//!
//! `--decoder-only` (ours) fine-tunes `post_quant_conv` and the decoder on
//! the posterior mean, the latent inference decodes, with the encoder
//! frozen: the latent space, and so every part trained on it (GRM, T, RTM,
//! Patch-DiT), stays valid while reconstruction improves. Decoder steps cost
//! about half of full AE steps, since nothing flows back through the encoder.
//!
//! On a model with the exact (space-to-depth) latent there is nothing to
//! train: the command measures the latent's per-channel mean and std on
//! training crops instead (`--steps` batches, at most `S2D_BATCHES`) and
//! writes them as the latent's shift and scale. It does so once: every part
//! trained afterwards works in that latent, so a model whose statistics are
//! already measured keeps them (re-running a whole training sequence, here
//! or on a GPU, must not move the latent under the trained GRM).

use super::args::{load_part_if_present, TrainArgs};
use super::loader::CropLoader;
use super::trainer::{timed, Losses, Step, Trainer};
use crate::autoencoder::{AeKind, AutoencoderKL, Autoencoder};
use crate::model::files::save;
use crate::model::loaded::{AE_FILE, CONFIG_FILE};
use anyhow::{Context, Result};
use clap::Args;
use tch::{nn::VarStore, Kind, Tensor};

#[derive(Args, Debug)]
pub struct AeTrainArgs {
    #[command(flatten)]
    pub common: TrainArgs,
    /// Weight of the KL term.
    #[arg(long, default_value_t = 1e-6)]
    pub kl: f64,
    /// Weight of the image-gradient L1 term.
    #[arg(long, default_value_t = 0.5)]
    pub grad: f64,
    /// Train only post_quant_conv and the decoder (encoder and latent frozen).
    #[arg(long)]
    pub decoder_only: bool,
}

/// Whether a weight belongs to the half that maps images to latents.
fn is_encoder_side(name: &str) -> bool {
    name.starts_with("encoder.") || name.starts_with("quant_conv.")
}

/// L1 between the finite differences of two images, both directions.
pub fn gradient_l1(a: &Tensor, b: &Tensor) -> Tensor {
    let dx = |x: &Tensor| x.narrow(3, 1, x.size()[3] - 1) - x.narrow(3, 0, x.size()[3] - 1);
    let dy = |x: &Tensor| x.narrow(2, 1, x.size()[2] - 1) - x.narrow(2, 0, x.size()[2] - 1);
    (dx(a) - dx(b)).abs().mean(Kind::Float) + (dy(a) - dy(b)).abs().mean(Kind::Float)
}

/// Crop batches the exact latent's statistics are measured on, at most:
/// 256 x 8 crops of 128 px hold 34 M pixels per colour, plenty for a mean and a std.
const S2D_BATCHES: u64 = 256;

pub fn run(a: AeTrainArgs) -> Result<i32> {
    let mut cfg = a.common.model_config()?;
    let run = a.common.resolve(4000, 8, 128, 2e-4)?;
    if cfg.ae.kind == AeKind::SpaceToDepth {
        return measure_space_to_depth(&a, &cfg, &run);
    }
    let dev = run.options.device;
    let mut vs = VarStore::new(dev);
    let ae = AutoencoderKL::new(&vs.root(), &cfg.ae);
    let ae_path = a.common.model.join(AE_FILE);
    load_part_if_present(&mut vs, &ae_path)?;
    let decoder_only = a.decoder_only;
    if decoder_only {
        for (name, t) in vs.variables() {
            if is_encoder_side(&name) {
                let _ = t.set_requires_grad(false);
            }
        }
    }
    // Full-AE runs keep the identity they always had, so old runs resume.
    let identity = match decoder_only {
        false => serde_json::json!((&cfg.ae, a.kl, a.grad, &run.crop)),
        true => serde_json::json!((&cfg.ae, a.grad, &run.crop, "decoder-only")),
    };
    let mut trainer = Trainer::new(run.options.clone(), &identity)?;
    let mut loader = CropLoader::new(&run.train_images, run.crop.clone())?;
    loader.skip_to(trainer.start_step());
    let val: Vec<Tensor> = run.val_crops()?.iter().map(|x| x.to_device(dev)).collect();

    let (kl_w, grad_w) = (a.kl, a.grad);
    let step = |_step: u64, _rng: &mut rand_chacha::ChaCha8Rng| -> Result<Step> {
        let (batch, wait) = timed(|| loader.next());
        let x = batch.context("data loader ended")??.to_device(dev) * 2.0 - 1.0;
        // The latent the decoder sees and, when the encoder trains too, its KL term.
        let (z, kl) = if decoder_only {
            (tch::no_grad(|| ae.posterior(&x).0), None)
        } else {
            let (mean, logvar) = ae.posterior(&x);
            // float32 noise: the draw must not depend on the autocast precision.
            let z = &mean
                + (&logvar * 0.5).exp() * Tensor::randn(mean.size(), (Kind::Float, mean.device()));
            let kl = ((mean.square() + logvar.exp() - 1.0 - &logvar) * 0.5).mean(Kind::Float);
            (z, Some(kl))
        };
        let rec = ae.decode_unscaled(&z);
        let l1 = (&rec - &x).abs().mean(Kind::Float);
        let mut loss = &l1 + gradient_l1(&rec, &x) * grad_w;
        let mut values = vec![("l1".into(), l1)];
        if let Some(kl) = kl {
            loss = loss + &kl * kl_w;
            values.push(("kl".into(), kl));
        }
        values.insert(0, ("loss".into(), loss.shallow_clone()));
        Ok(Step { loss, values, data_wait: wait })
    };
    let validate = |_step: u64, _emas: &[super::Ema]| -> Result<Losses> {
        tch::no_grad(|| {
            let (mut l1, mut psnr) = (0.0, 0.0);
            for x in &val {
                let (mean, _) = ae.posterior(&(x * 2.0 - 1.0));
                let rec = ((ae.decode_unscaled(&mean) + 1.0) / 2.0).clamp(0.0, 1.0);
                l1 += (&rec - x).abs().mean(Kind::Float).double_value(&[]);
                let mse = (&rec - x).square().mean(Kind::Float).double_value(&[]);
                psnr += -10.0 * mse.max(1e-12).log10();
            }
            let n = val.len().max(1) as f64;
            Ok(vec![("l1".into(), l1 / n), ("psnr_rgb".into(), psnr / n)])
        })
    };
    trainer.run(&mut [("ae", &mut vs)], step, validate)?;

    if decoder_only {
        save(&vs, &ae_path, false)?;
        println!(
            "ae: decoder trained to step {} in {}; encoder and scaling_factor unchanged; wrote {}",
            trainer.steps_done,
            run.options.out_dir.display(),
            ae_path.display()
        );
        return Ok(0);
    }
    // Unit-variance latents for the diffusion stage.
    let std = tch::no_grad(|| {
        let lat: Vec<Tensor> = val
            .iter()
            .map(|x| ae.posterior(&(x * 2.0 - 1.0)).0.flatten(0, -1))
            .collect();
        Tensor::cat(&lat, 0).std(true).double_value(&[])
    });
    cfg.ae.scaling_factor = 1.0 / std.max(1e-6);
    save(&vs, &ae_path, false)?;
    cfg.save(&a.common.model.join(CONFIG_FILE))?;
    println!(
        "ae: trained to step {} in {}; latent std {std:.4} -> scaling_factor {:.5}; wrote {}",
        trainer.steps_done,
        run.options.out_dir.display(),
        cfg.ae.scaling_factor,
        ae_path.display()
    );
    Ok(0)
}

/// The exact latent's shift and scale from training crops, into `ae.safetensors`.
fn measure_space_to_depth(a: &AeTrainArgs, cfg: &crate::model::ModelConfig, run: &super::args::Run) -> Result<i32> {
    let mut vs = VarStore::new(tch::Device::Cpu);
    let Autoencoder::SpaceToDepth(mut s2d, _) = Autoencoder::new(&vs.root(), &cfg.ae) else {
        unreachable!("the config says space_to_depth")
    };
    let ae_path = a.common.model.join(AE_FILE);
    load_part_if_present(&mut vs, &ae_path)?;
    if s2d.shift.abs().max().double_value(&[]) > 0.0 {
        println!("ae: exact latent, its statistics already measured; kept ({} is what the other parts were trained on)", ae_path.display());
        return Ok(0);
    }
    let batches = run.options.max_steps.clamp(1, S2D_BATCHES) as usize;
    let crops: Vec<Tensor> = CropLoader::new(&run.train_images, run.crop.clone())?
        .take(batches)
        .map(|b| b.map(|x| x * 2.0 - 1.0))
        .collect::<Result<_>>()?;
    s2d.measure(&crops);
    save(&vs, &ae_path, false)?;
    let (shift, scale) = (&s2d.shift, &s2d.scale);
    println!(
        "ae: exact latent, factor {}; measured on {} crops: shift {:.4}..{:.4}, scale {:.4}..{:.4}; wrote {}",
        s2d.factor,
        crops.iter().map(|c| c.size()[0]).sum::<i64>(),
        shift.min().double_value(&[]),
        shift.max().double_value(&[]),
        scale.min().double_value(&[]),
        scale.max().double_value(&[]),
        ae_path.display()
    );
    Ok(0)
}
