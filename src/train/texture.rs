//! `patchscaler train texture`: the texture classifier T, the key of the
//! Reference Texture Memory.
//!
//! The paper's T is an unnamed "pre-trained texture classifier"; ours is
//! trained self-supervised for the one job it has. RTM keys are made from
//! clean HR latents, queries from the coarse latents y0 of degraded inputs,
//! so a positive pair is one place of an HR crop seen both ways (see
//! `texture_pairs`): the clean latent window, and the window at nearly the
//! same place of the crop degraded, upsampled, encoded and refined by the
//! GRM. Loss: NT-Xent (SimCLR) over the batch: each view must pick its
//! partner among all other views. T thereby learns what survives
//! degradation and a small misalignment (material, not layout), which is
//! exactly what makes a degraded query find clean entries of its texture.
//! The AE and GRM are frozen; only T trains.
//!
//! Validation, on fixed pairs from the val split: the NT-Xent loss and the
//! top-1 retrieval accuracy of each degraded view among the clean keys of
//! its batch (chance: 1 / pairs per batch). A row at step 0 records the
//! untrained T, so log.csv shows the gain.
//!
//! Degradation costs ~2 s per 512^2 image, so crops are small (default
//! 2 x 2 patches) and each gives several pairs.

use super::args::{load_frozen_ae, load_part_if_present, TrainArgs};
use super::log::{CsvLog, LogRow};
use super::lr_pairs::{degrade_batch, PairConfig as LrPairConfig, PairLoader};
use super::rtm::write_memory;
use super::reuse::ReusedPairs;
use super::texture_pairs::{Degradation, PairMaker, Pairs};
use super::trainer::{Losses, Step, Trainer};
use crate::autoencoder::Autoencoder;
use crate::degrade::DegradeConfig;
use crate::grm::unet::Grm;
use crate::model::files::{load_checked, save};
use crate::model::loaded::{GRM_FILE, RTM_FILE, TEXTURE_FILE};
use crate::texture::classifier::l2_normalize;
use crate::texture::{contrastive_loss, Rtm, TextureClassifier};
use anyhow::{bail, Context, Result};
use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tch::{nn::VarStore, Kind, Tensor};

#[derive(Args, Debug)]
pub struct TextureTrainArgs {
    #[command(flatten)]
    pub common: TrainArgs,
    /// NT-Xent temperature.
    #[arg(long, default_value_t = 0.2)]
    pub temperature: f64,
    /// Patch pairs cut from each crop.
    #[arg(long, default_value_t = 4)]
    pub patches_per_crop: i64,
    /// Largest offset, in latent pixels, of view 2's window from view 1's (default V/4).
    #[arg(long)]
    pub shift: Option<i64>,
    /// How view 2's LR is made.
    #[arg(long, value_enum, default_value_t = Degradation::Mix)]
    pub degradation: Degradation,
    /// Pass view 2 through the model's GRM, as at inference (default: when grm.safetensors exists).
    #[arg(long, conflicts_with = "no_grm")]
    pub grm: bool,
    /// Use the encoded degraded crop as view 2, without the GRM.
    #[arg(long)]
    pub no_grm: bool,
    /// Steps each degraded crop batch serves, each with new windows (the
    /// degradation is the slow part on a GPU).
    #[arg(long, default_value_t = 1)]
    pub reuse: u64,
}

/// Fraction of rows of `queries` whose most similar row of `keys` (cosine)
/// is their own partner, the row with the same index: a float32 scalar on
/// their device.
pub fn top1_retrieval(queries: &Tensor, keys: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let best = l2_normalize(queries)
            .matmul(&l2_normalize(keys).tr())
            .argmax(1, false);
        let own = Tensor::arange(best.size()[0], (Kind::Int64, best.device()));
        best.eq_tensor(&own).to_kind(Kind::Float).mean(Kind::Float)
    })
}

/// NT-Xent and top-1 retrieval of one batch of pairs.
fn score(t: &TextureClassifier, pairs: &Pairs, temperature: f64) -> Result<(Tensor, Tensor)> {
    let keys = t.forward(&pairs.clean)?;
    let queries = t.forward(&pairs.degraded)?;
    let loss = contrastive_loss(&keys, &queries, temperature)?;
    Ok((loss, top1_retrieval(&queries, &keys)))
}

pub fn run(a: TextureTrainArgs) -> Result<i32> {
    let cfg = a.common.model_config()?;
    let v = cfg.texture.patch;
    let dir = &a.common.model;
    // The device is known only once the run is resolved, which needs the
    // maker's default crop, which needs the AE: resolve the device alone first.
    let dev = crate::device::device(a.common.device.unwrap_or(crate::device::DeviceArg::Cpu))?;
    let mut ae_vs = VarStore::new(dev);
    let ae = Autoencoder::new(&ae_vs.root(), &cfg.ae);
    load_frozen_ae(&mut ae_vs, dir)?;
    let grm_path = dir.join(GRM_FILE);
    let use_grm = match (a.grm, a.no_grm) {
        (true, _) if !grm_path.exists() => bail!("--grm: {} does not exist", grm_path.display()),
        (_, no) => !no && grm_path.exists(),
    };
    let mut grm_vs = VarStore::new(dev);
    let grm = Grm::new(&grm_vs.root(), &cfg.grm)?;
    if use_grm {
        load_checked(&mut grm_vs, &grm_path, &|_| None).context("the frozen GRM")?;
    }
    let mut vs = VarStore::new(dev);
    let t = TextureClassifier::new(&vs.root(), &cfg.texture)?;
    let t_path = dir.join(TEXTURE_FILE);
    load_part_if_present(&mut vs, &t_path)?;

    let maker = PairMaker {
        ae: &ae,
        grm: use_grm.then_some(&grm),
        scale: cfg.scale,
        patch: v,
        per_crop: a.patches_per_crop,
        shift: a.shift.unwrap_or(v / 4),
        degradation: a.degradation,
        degrade: DegradeConfig::realesrgan(),
    };
    let run = a
        .common
        .resolve(2000, 8, maker.default_crop() as u32, 3e-4)?;
    maker.check_crop(run.crop.size as i64)?;
    if run.options.device != dev {
        bail!("train texture: give the device as --device, not in the config file");
    }
    let identity = (
        &cfg.texture,
        &cfg.ae,
        use_grm,
        a.temperature,
        maker.per_crop,
        maker.shift,
        maker.mix(),
        &run.crop,
        a.reuse,
    );
    let mut trainer = Trainer::new(run.options.clone(), &identity)?;
    let lr_cfg = LrPairConfig {
        scale: cfg.scale,
        mix: maker.mix(),
        ..LrPairConfig::realesrgan_x4(run.crop.seed)
    };
    let loader = PairLoader::new(&run.train_images, run.crop.clone(), lr_cfg.clone())?;
    let mut batches = ReusedPairs::new(loader, a.reuse, trainer.start_step())?;

    // Fixed validation pairs: crops, degradations and windows drawn once.
    let mut val_rng = ChaCha8Rng::seed_from_u64(run.val_crop_config().seed);
    let val_lr = LrPairConfig {
        seed: lr_cfg.seed ^ 0x5eed,
        ..lr_cfg.clone()
    };
    let val: Vec<Pairs> = run
        .val_crops()?
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let pair = degrade_batch(x, k as u64, &val_lr)?;
            maker.make(&pair.hr, &pair.lr, &mut val_rng)
        })
        .collect::<Result<_>>()?;

    let temperature = a.temperature;
    let step = |step: u64, rng: &mut ChaCha8Rng| -> Result<Step> {
        let (latents, wait) = batches.get(step, |pair| maker.latents(&pair.hr, &pair.lr))?;
        let pairs = maker.cut(latents, rng);
        let (loss, top1) = score(&t, &pairs, temperature)?;
        let values = vec![("ntxent".into(), loss.shallow_clone()), ("top1".into(), top1)];
        Ok(Step { loss, values, data_wait: wait })
    };
    let validate = |_step: u64, _emas: &[super::Ema]| -> Result<Losses> {
        tch::no_grad(|| {
            let (mut loss, mut top1) = (0.0, 0.0);
            for pairs in &val {
                let (l, acc) = score(&t, pairs, temperature)?;
                loss += l.double_value(&[]);
                top1 += acc.double_value(&[]);
            }
            let n = val.len().max(1) as f64;
            let chance = val.first().map_or(0.0, |p| 1.0 / p.windows.len() as f64);
            Ok(vec![
                ("ntxent".into(), loss / n),
                ("top1".into(), top1 / n),
                ("top1_chance".into(), chance),
            ])
        })
    };
    if trainer.start_step() == 0 {
        log_untrained(&trainer.log_path(), &validate(0, &[])?)?;
    }
    trainer.run(&mut [("texture", &mut vs)], step, &validate)?;

    save(&vs, &t_path, false)?;
    let rekeyed = rekey_memory(&dir.join(RTM_FILE), &t)?;
    let last = validate(trainer.steps_done, &[])?;
    let value = |name: &str| {
        last.iter()
            .find(|(n, _)| n == name)
            .map_or(f64::NAN, |(_, v)| *v)
    };
    println!(
        "texture: trained to step {} in {} (view 2: {:?}{}); val top-1 {:.3} (chance {:.3}); wrote {}{}",
        trainer.steps_done,
        run.options.out_dir.display(),
        a.degradation,
        if use_grm { " + GRM" } else { "" },
        value("top1"),
        value("top1_chance"),
        t_path.display(),
        if rekeyed { "; re-keyed the existing RTM (run `train rtm` to re-select its entries)" } else { "" }
    );
    Ok(0)
}

/// Validation rows at step 0, before the first step: the untrained T's
/// score, which the Trainer keeps (it drops only rows past the resume step).
fn log_untrained(log: &Path, values: &Losses) -> Result<()> {
    let rows: Vec<LogRow> = values
        .iter()
        .map(|(name, value)| LogRow {
            step: 0,
            split: "val".into(),
            name: name.clone(),
            value: *value,
            lr: 0.0,
            samples_per_s: 0.0,
            elapsed_s: 0.0,
        })
        .collect();
    CsvLog::open(log, 0)?.append(&rows)
}

/// Keys made by the old T would not match queries made by the new one, so
/// the model folder's memory gets fresh keys for its values; which entries
/// it holds is still the old T's choice until `train rtm` runs again.
fn rekey_memory(path: &Path, t: &TextureClassifier) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let old = Rtm::load(path, t.device())?;
    if &old.meta.texture != t.config() {
        tracing::warn!(
            "{}: made for another texture config; not re-keyed",
            path.display()
        );
        return Ok(false);
    }
    let keys = t.keys_batched(&old.values, 256)?;
    write_memory(&Rtm::new(keys, old.values, old.meta)?, path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top1_counts_rows_whose_own_partner_is_nearest() {
        let keys = Tensor::from_slice2(&[[1f32, 0.0], [0.0, 1.0], [-1.0, 0.0]]);
        // Rows 0 and 2 point at their partners; row 1 is nearest to key 0.
        let queries = Tensor::from_slice2(&[[2f32, 0.1], [1.0, 0.2], [-0.5, 0.0]]);
        assert!(
            (top1_retrieval(&queries, &keys).double_value(&[]) - 2.0 / 3.0).abs() < 1e-6,
            "mean of three rows in f32"
        );
        assert_eq!(top1_retrieval(&keys, &keys).double_value(&[]), 1.0);
    }
}
