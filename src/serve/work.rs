//! One job through the same code as `patchscaler upscale`: the upload
//! written to a generated name in the job's temporary folder, then
//! `app::upscale_one` (decode, pipeline, rescale, PNG encoding),
//! so that the result's bytes equal the command's for the same image,
//! preset and seed. The bicubic "before" image and the HR are encoded here.

use super::jobs::{JobHandle, JobOutput, JobRequest};
use crate::app::{upscale_one, Job, Settings};
use crate::pipeline::progress::ProgressFn;
use crate::imageio::{load_image, save::save_image};
use crate::model::Model;
use crate::pipeline::SamplingOptions;
use crate::resize::bicubic::upsample_bicubic;
use anyhow::{Context, Result};
use std::path::Path;

/// The sampling options `upscale` builds for `--preset P --seed S` and no
/// other flag.
pub fn sampling_options(model: &Model, req: &JobRequest) -> Result<SamplingOptions> {
    Settings { preset: req.preset, seed: req.seed, ..Settings::default() }.sampling_options(model)
}

/// Runs one job in a fresh folder under `tmp` (removed on return); returns
/// the images, the summary line and the result's size. Errors are one line
/// that names the client's file, never a server path.
pub fn run_job(
    model: &Model,
    req: &JobRequest,
    tmp: &Path,
    handle: &JobHandle,
) -> Result<(JobOutput, String, u32, u32), String> {
    let dir = tempfile::Builder::new()
        .prefix("job-")
        .tempdir_in(tmp)
        .map_err(|e| format!("cannot make a working folder: {e}"))?;
    let input = dir.path().join("input");
    let download_name = download_name(&req.name, req.scale);
    let clean = |e: anyhow::Error| {
        let msg = format!("{e:#}")
            .replace(&input.display().to_string(), &req.name)
            .replace(&dir.path().display().to_string(), "");
        msg.lines().next().unwrap_or("failed").to_string()
    };
    let out = job_in(model, req, dir.path(), &input, &download_name, handle).map_err(clean)?;
    Ok(out)
}

fn job_in(
    model: &Model,
    req: &JobRequest,
    dir: &Path,
    input: &Path,
    download_name: &str,
    handle: &JobHandle,
) -> Result<(JobOutput, String, u32, u32)> {
    std::fs::write(input, &req.image).context("cannot store the upload")?;
    let mut opts = sampling_options(model, req)?;
    let h = handle.clone();
    opts.progress = Some(ProgressFn::new(move |p| {
        h.forward_pipeline_progress(&p.stage, p.done as usize, p.total as usize);
    }));
    let out = dir.join("result.png");
    let qmap = dir.join("qmap.png");
    let inputs = [input.to_path_buf()];
    handle.running();
    let job = Job { input: input.to_path_buf(), output: out.clone(), qmap: Some(qmap.clone()) };
    let line = upscale_one(model, &job, &opts, req.scale, req.memory_limit_mib, &inputs)?.detailed;
    let result = std::fs::read(&out).context("cannot read the result")?;
    let (width, height) = image::image_dimensions(&out).context("cannot read the result")?;
    let qmap_png = std::fs::read(&qmap).context("cannot read the group figure")?;
    let bicubic = bicubic_png(input, dir, req.max_pixels, width, height, &inputs)?;
    let hr = match &req.hr {
        Some(b) => Some(to_png(b).context("the HR image")?),
        None => None,
    };
    // "<input> -> <output>: ..." with the client's name and the download name.
    let summary = match line.split_once(": ") {
        Some((_, rest)) => format!("{} -> {download_name}: {rest}", req.name),
        None => line,
    };
    Ok((
        JobOutput {
            result,
            bicubic,
            qmap: qmap_png,
            hr,
            download_name: download_name.to_string(),
        },
        summary,
        width,
        height,
    ))
}

/// Bicubic to the result's size, written in the input's layout like the result.
fn bicubic_png(
    input: &Path,
    dir: &Path,
    max_pixels: u64,
    width: u32,
    height: u32,
    inputs: &[std::path::PathBuf],
) -> Result<Vec<u8>> {
    let img = load_image(input, max_pixels)?;
    let (h, w) = (height as usize, width as usize);
    let rgb = upsample_bicubic(&img.rgb, h, w)?.clamp(0.0, 1.0);
    let alpha = match img.alpha.as_ref() {
        Some(a) => Some(upsample_bicubic(a, h, w)?.clamp(0.0, 1.0)),
        None => None,
    };
    let p = dir.join("bicubic.png");
    save_image(&rgb, alpha.as_ref(), &img, &p, inputs)?;
    std::fs::read(&p).context("cannot read the bicubic image")
}

/// Any decodable image as PNG.
pub fn to_png(bytes: &[u8]) -> Result<Vec<u8>> {
    let img = image::load_from_memory(bytes)?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// `<stem>_x<scale>.png` from the client's file name, reduced to safe
/// characters (it only ever names the download, never a file here).
pub fn download_name(name: &str, scale: f64) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    let mut stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if stem.is_empty() {
        stem = "image".into();
    }
    let s = if scale.fract() == 0.0 {
        format!("{}", scale as i64)
    } else {
        format!("{scale}")
    };
    format!("{stem}_x{s}.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_are_safe() {
        assert_eq!(download_name("cat.photo.jpg", 4.0), "cat_photo_x4.png");
        assert_eq!(download_name("../../etc/passwd", 2.5), "passwd_x2.5.png");
        assert_eq!(download_name("a b\\c:d.png", 4.0), "c_d_x4.png");
        assert_eq!(download_name("", 4.0), "image_x4.png");
    }
}
