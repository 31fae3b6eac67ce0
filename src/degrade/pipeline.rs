//! Real-ESRGAN's second-order degradation (`realesrgan_model.feed_data`):
//! blur, resize, noise and JPEG twice, then the final resize + sinc and
//! JPEG in random order. The light degradation runs through the same code
//! with most stages off. Every draw comes from the caller's generator, so a
//! (seed, image) pair always gives the same LR bytes.

use super::config::DegradeConfig;
use super::filter::filter2d;
use crate::resize::matlab::imresize;
use super::jpeg::jpeg_round_trip;
use super::noise::random_add_noise;
use super::random_kernel::{random_blur_kernel, random_final_sinc, uniform};
use super::resize::{resize_by, resize_to, ResizeMode, RESIZE_MODES};
use super::usm::UsmSharp;
use anyhow::{ensure, Result};
use rand::Rng;
use tch::{Device, Kind, Tensor};

/// Below this many pixels a 21-tap blur cannot be reflect-padded.
const MIN_BLUR_SIDE: f64 = 11.0;

fn random_mode(rng: &mut impl Rng) -> ResizeMode {
    RESIZE_MODES[rng.random_range(0..RESIZE_MODES.len())]
}

/// Quality drawn like upstream's float quality, rounded for the encoder.
fn jpeg(img: &Tensor, rng: &mut impl Rng, range: (f64, f64)) -> Result<Tensor> {
    let quality = uniform(rng, range).round() as u8;
    jpeg_round_trip(&img.clamp(0.0, 1.0), quality)
}

/// The HR, cropped to a multiple of `scale`, shrunk by 1/scale with area
/// or MATLAB bicubic at random: both low-pass first, so fine detail turns
/// to blur, not to the moire of torch's unfiltered bilinear and bicubic.
fn antialiased_shrink(img: &Tensor, scale: i64, rng: &mut impl Rng) -> Result<Tensor> {
    let (_, _, h, w) = img.size4()?;
    let cropped = img.narrow(2, 0, h - h % scale).narrow(3, 0, w - w % scale);
    if rng.random::<f64>() < 0.5 {
        resize_to(&cropped, (h / scale, w / scale), ResizeMode::Area)
    } else {
        Ok(imresize(&cropped.get(0), 1.0 / scale as f64).unsqueeze(0))
    }
}

/// 8-bit quantisation, as LR images are stored.
fn quantise(img: &Tensor) -> Tensor {
    (img * 255.0).round().clamp(0.0, 255.0) / 255.0
}

/// Degrades `hr` (1, 3, H, W) in [0, 1] into an LR (1, 3, H/scale, W/scale)
/// quantised to 1/255, on the CPU.
pub fn degrade(hr: &Tensor, scale: i64, rng: &mut impl Rng, cfg: &DegradeConfig) -> Result<Tensor> {
    tch::no_grad(|| {
        let (_, c, h, w) = hr.size4()?;
        ensure!(c == 3, "degrade: expected an RGB image, got {c} channels");
        let shortest = h.min(w) as f64;
        let first_shrink = cfg.resize1.as_ref().map_or(1.0, |r| r.range.0.min(1.0));
        ensure!(
            shortest * first_shrink >= MIN_BLUR_SIDE && shortest / scale as f64 >= MIN_BLUR_SIDE && shortest >= 26.0,
            "degrade: a {h}x{w} image is too small for x{scale} (the blurs need >= {MIN_BLUR_SIDE} px at every stage)"
        );
        ensure!(
            !cfg.antialias || (cfg.resize1.is_none() && cfg.resize2.is_none()),
            "degrade: the antialiased shrink goes straight from the HR to the LR size; switch resize1 and resize2 off"
        );
        let (lr_h, lr_w) = (h / scale, w / scale);

        // Kernels first, as the dataset draws them before the model degrades.
        let kernel1 = cfg.blur1.as_ref().map(|b| random_blur_kernel(rng, b));
        let kernel2 = cfg.blur2.as_ref().map(|b| random_blur_kernel(rng, b));
        let sinc = random_final_sinc(rng, cfg.final_sinc_prob, cfg.final_sinc_size);

        let hr = hr.to_device(Device::Cpu).to_kind(Kind::Float);
        let mut out = if cfg.sharpen_hr {
            UsmSharp::default().forward(&hr)?
        } else {
            hr
        };

        // First order.
        if let Some(k) = &kernel1 {
            out = filter2d(&out, &k.weights)?;
        }
        if let Some(r) = &cfg.resize1 {
            let s = r.draw_scale(rng);
            out = resize_by(&out, s, random_mode(rng))?;
        }
        if let Some(n) = &cfg.noise1 {
            out = random_add_noise(&out, rng, n)?;
        }
        if let Some(q) = cfg.jpeg1 {
            out = jpeg(&out, rng, q)?;
        }

        // Second order.
        if let Some(k) = &kernel2 {
            if rng.random::<f64>() < cfg.blur2_prob {
                out = filter2d(&out, &k.weights)?;
            }
        }
        let s = cfg.resize2.as_ref().map_or(1.0, |r| r.draw_scale(rng));
        let size = (
            (h as f64 / scale as f64 * s) as i64,
            (w as f64 / scale as f64 * s) as i64,
        );
        out = if cfg.antialias {
            antialiased_shrink(&out, scale, rng)?
        } else {
            resize_to(&out, (size.0.max(1), size.1.max(1)), random_mode(rng))?
        };
        if let Some(n) = &cfg.noise2 {
            out = random_add_noise(&out, rng, n)?;
        }
        // Resizing after JPEG smears its blocks, before it keeps them sharp:
        // both orders occur in real images.
        let resize_then_jpeg = rng.random::<f64>() < 0.5;
        if !resize_then_jpeg {
            if let Some(q) = cfg.jpeg2 {
                out = jpeg(&out, rng, q)?;
            }
        }
        out = resize_to(&out, (lr_h, lr_w), random_mode(rng))?;
        if let Some(k) = &sinc {
            out = filter2d(&out, k)?;
        }
        if resize_then_jpeg {
            if let Some(q) = cfg.jpeg2 {
                out = jpeg(&out, rng, q)?;
            }
        }
        Ok(quantise(&out))
    })
}

/// The classic bicubic LR of the benchmarks: HR cropped to a multiple of
/// `scale`, MATLAB `imresize` by 1/scale, stored as 8 bits.
pub fn bicubic_lr(hr: &Tensor, scale: i64) -> Result<Tensor> {
    tch::no_grad(|| {
        let (_, c, h, w) = hr.size4()?;
        ensure!(
            c == 3 && h >= scale && w >= scale,
            "bicubic_lr: need an RGB image of at least {scale} px, got {c}x{h}x{w}"
        );
        let cropped = hr.get(0).narrow(1, 0, h - h % scale).narrow(2, 0, w - w % scale);
        Ok(quantise(&imresize(&cropped.to_device(Device::Cpu), 1.0 / scale as f64)).unsqueeze(0))
    })
}

/// x4 bicubic LR, the paper's evaluation setting.
pub fn bicubic_x4_lr(hr: &Tensor) -> Result<Tensor> {
    bicubic_lr(hr, 4)
}
