//! `POST /api/jobs`: an upload, checked as `upscale` checks its inputs.
//!
//! What can be refused without the body is refused before any of it is
//! read: a declared size over the limit (413), a full queue or too many
//! uploads at once (503 with `Retry-After`). The queue place is held while
//! the body is read (`jobs::Slot`), so a full upload is never refused for a
//! queue that filled meanwhile. The options go through the parsers of
//! `upscale`'s flags, so the page accepts exactly what the command does.

use super::api_error::{mib, ApiError};
use super::state::AppState;
use super::jobs::{JobRequest, SubmitError};
use crate::app::memory::{max_input_pixels, usable_mib};
use crate::app::Preset;
use crate::app::parse_scale;
use crate::device::DeviceArg;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use crate::imageio::load::{decode_at_most, Refusal, Refused, Source};
use clap::ValueEnum;
use serde_json::json;
use std::sync::Arc;

/// The most bytes one request may carry: two files and a few small fields
/// (each file is checked on its own against `max_upload`).
pub fn body_limit(max_upload: usize) -> usize {
    max_upload.saturating_mul(2).saturating_add(1 << 20)
}

/// Seconds a client refused for a busy server is asked to wait.
const RETRY_AFTER_S: u64 = 5;

pub async fn create_job(
    State(s): State<Arc<AppState>>,
    req: Request,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let limit = s.max_upload_bytes;
    let most = body_limit(limit);
    if let Some(n) = declared_length(req.headers()).filter(|n| *n > most as u64) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the upload ({} MiB) is larger than the limit of {} MiB per file ({} MiB per request)",
                mib(n as usize),
                mib(limit),
                mib(most)
            ),
        ));
    }
    let slot = s
        .jobs
        .reserve()
        .map_err(|e| ApiError::busy(e.to_string(), RETRY_AFTER_S))?;
    let _reading = Arc::clone(&s.uploads).try_acquire_owned().map_err(|_| {
        ApiError::busy(
            format!(
                "the server is reading as many uploads as it takes at once ({}); try again in a few seconds",
                s.max_uploads
            ),
            RETRY_AFTER_S,
        )
    })?;
    let mp = Multipart::from_request(req, &s).await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("send the image as multipart/form-data ({})", e.body_text()),
        )
    })?;
    let form = tokio::time::timeout(s.upload_timeout, read_form(mp, limit))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the upload took longer than the server's --upload-timeout of {} s",
                    s.upload_timeout.as_secs_f64()
                ),
            )
        })??;
    let Some((image, name)) = form.image else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "choose an image to upscale"));
    };
    let o = parse_options(&form.fields, &s.devices)?;
    // Every job draws the qmap figure, so its reserve is kept too.
    let max_pixels = max_input_pixels(usable_mib(s.memory_limit_mib, true), o.scale);
    let hint = format!(
        "at x{} under the server's --memory-limit {} MiB",
        o.scale, s.memory_limit_mib
    );
    let hr_max = (max_pixels as f64 * o.scale.max(1.0) * o.scale.max(1.0)) as u64;
    let hr = form.hr;
    let checked = tokio::task::spawn_blocking(move || {
        check_image(&image, &name, max_pixels, &hint)?;
        if let Some((b, n)) = &hr {
            check_image(b, &format!("HR {n}"), hr_max, "for an HR")?;
        }
        Ok::<_, ApiError>((image, name, hr))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the image check failed"))??;
    let (image, name, hr) = checked;
    let req = JobRequest {
        name,
        image,
        hr: hr.map(|(b, _)| b),
        preset: o.preset,
        scale: o.scale,
        seed: o.seed,
        device: o.device,
        max_pixels,
        memory_limit_mib: s.memory_limit_mib,
    };
    let id = s.jobs.submit(req, slot).map_err(|e| match e {
        SubmitError::NoDevice(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
        SubmitError::QueueFull(_) => ApiError::busy(e.to_string(), RETRY_AFTER_S),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "events": format!("/api/jobs/{id}/events") })),
    ))
}

fn declared_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The files and the text fields of an upload.
struct Form {
    image: Option<(Vec<u8>, String)>,
    hr: Option<(Vec<u8>, String)>,
    /// (name, text) of `preset`, `scale`, `seed`, `device`.
    fields: Vec<(String, String)>,
}

async fn read_form(mut mp: Multipart, limit: usize) -> Result<Form, ApiError> {
    let mut form = Form { image: None, hr: None, fields: Vec::new() };
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        match field.name().unwrap_or("") {
            "image" => {
                let name = display_name(field.file_name());
                form.image = Some((read_file(field, &name, limit).await?, name));
            }
            "hr" => {
                let name = display_name(field.file_name());
                let b = read_file(field, &name, limit).await?;
                // An empty file input sends an empty part: no HR.
                if !b.is_empty() {
                    form.hr = Some((b, name));
                }
            }
            n @ ("preset" | "scale" | "seed" | "device") => {
                let n = n.to_string();
                form.fields.push((n, read_text(field).await?));
            }
            _ => {
                read_file(field, "field", limit).await?;
            }
        }
    }
    Ok(form)
}

/// What `upscale --preset --scale --seed --device` would be given.
struct Options {
    preset: Preset,
    scale: f64,
    seed: u64,
    device: DeviceArg,
}

/// The fields through the parsers of `upscale`'s flags (defaults: theirs);
/// a device must also be one this server offers.
fn parse_options(fields: &[(String, String)], offered: &[DeviceArg]) -> Result<Options, ApiError> {
    let get = |k: &str, default: &str| {
        fields
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map_or(default.to_string(), |(_, v)| v.clone())
    };
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let (preset, scale, seed, device) = (
        get("preset", "balanced"),
        get("scale", "4"),
        get("seed", "0"),
        get("device", "cpu"),
    );
    let preset: Preset = preset.parse().map_err(bad)?;
    let scale = parse_scale(&scale).map_err(|e| bad(format!("scale {scale:?}: {e}")))?;
    let seed: u64 = seed
        .parse()
        .map_err(|_| bad(format!("seed {seed:?}: give a whole number >= 0")))?;
    let device = DeviceArg::from_str(&device, false)
        .ok()
        .filter(|d| offered.contains(d))
        .ok_or_else(|| {
            bad(format!(
                "device {device:?} is not available here (this server offers {})",
                offered
                    .iter()
                    .map(|d| super::jobs::device_name(*d))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    Ok(Options { preset, scale, seed, device })
}

/// Whether a body error came from the body timeout (`RequestBodyTimeoutLayer`).
fn stalled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The display name of an uploaded file: its last path part, printable,
/// at most 100 characters.
fn display_name(raw: Option<&str>) -> String {
    let base = raw.unwrap_or("").rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(100).collect();
    if clean.trim().is_empty() {
        "image".into()
    } else {
        clean
    }
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the upload is larger than the limit of {} MiB", mib(limit)),
        )
    } else if stalled(&e) {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "the upload stalled: nothing arrived within the server's --body-timeout",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("a malformed upload: {}", e.body_text()),
        )
    }
}

/// A file field's bytes, refused past `limit`.
async fn read_file(mut field: Field<'_>, label: &str, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{label}: larger than the upload limit of {} MiB",
                    mib(limit)
                ),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn read_text(field: Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("field").to_string();
    let b = read_file(field, &name, 256).await.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the field {name} is too long"),
        )
    })?;
    String::from_utf8(b)
        .map(|s| s.trim().to_string())
        .map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the field {name} is not text"),
            )
        })
}

/// Decodes `bytes` fully (not by extension) through `imageio`, with the
/// checks and limits a file gets (animations, a truncated JPEG, the
/// decoder's allocation bound), refusing more than `max_pixels` before any
/// pixel is decoded. Returns (width, height); each refusal its HTTP status.
pub fn check_image(
    bytes: &[u8],
    label: &str,
    max_pixels: u64,
    limit_hint: &str,
) -> Result<(u32, u32), ApiError> {
    let src = Source::Bytes { bytes, name: std::path::Path::new(label) };
    match decode_at_most(src, max_pixels, &format!("pixels at most {limit_hint}")) {
        Ok((h, _)) => Ok((h.width, h.height)),
        Err(e) => {
            let status = match e.downcast_ref::<Refused>().map(|r| r.why) {
                Some(Refusal::Empty) => StatusCode::BAD_REQUEST,
                Some(Refusal::NotAnImage) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some(Refusal::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Err(ApiError::new(status, format!("{e:#}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn names_are_reduced_to_a_label() {
        assert_eq!(display_name(Some("C:\\x\\cat.png")), "cat.png");
        assert_eq!(display_name(Some("../../a\n.png")), "a.png");
        assert_eq!(display_name(None), "image");
    }

    #[test]
    fn text_is_not_an_image_and_big_images_are_refused_before_decoding() {
        let e = check_image(b"hello, world", "t.png", 100, "").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let mut png = Cursor::new(Vec::new());
        image::RgbImage::new(20, 10)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let png = png.into_inner();
        assert_eq!(check_image(&png, "a", 200, "").unwrap(), (20, 10));
        let e = check_image(&png, "a", 199, "here").unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.message().contains("20x10 is too large"), "{}", e.message());
        let e = check_image(&png[..png.len() / 2], "a", 200, "").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY, "{}", e.message());
        // A JPEG cut before its end marker, which the decoder alone would accept.
        let mut jpg = Cursor::new(Vec::new());
        image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 7]))
            .write_to(&mut jpg, image::ImageFormat::Jpeg)
            .unwrap();
        let jpg = jpg.into_inner();
        assert_eq!(check_image(&jpg, "j.jpg", 2000, "").unwrap(), (32, 32));
        let e = check_image(&jpg[..jpg.len() - 2], "j.jpg", 2000, "").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message().contains("j.jpg: truncated or corrupt"), "{}", e.message());
        // An animation, as `upscale` refuses it, before the job is queued.
        let mut gif = Vec::new();
        let frames = (0..2u8).map(|i| image::Frame::new(image::RgbaImage::from_pixel(4, 4, image::Rgba([i * 90, 0, 0, 255]))));
        image::codecs::gif::GifEncoder::new(&mut gif).encode_frames(frames).unwrap();
        let e = check_image(&gif, "a.gif", 2000, "").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message().contains("a.gif: animated (2 frames)"), "{}", e.message());
    }

    #[test]
    fn options_follow_upscales_flags() {
        let f = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let cpu = [DeviceArg::Cpu];
        let o = parse_options(&[], &cpu).unwrap();
        assert_eq!((o.scale, o.seed, o.preset, o.device), (4.0, 0, Preset::Balanced, DeviceArg::Cpu));
        for (k, v, msg) in [
            ("scale", "0.000000001", "scale \"0.000000001\": "),
            ("scale", "NaN", "scale \"NaN\": "),
            ("scale", "17", "scale \"17\": "),
            ("preset", "Fast", "preset \"Fast\""),
            ("seed", "-1", "seed \"-1\""),
            ("device", "cuda", "device \"cuda\" is not available"),
        ] {
            let e = parse_options(&f(k, v), &cpu).err().unwrap_or_else(|| panic!("{k}={v} accepted"));
            assert!(e.message().starts_with(msg), "{k}={v}: {}", e.message());
            if k == "scale" {
                let clap = parse_scale(v).unwrap_err();
                assert!(e.message().ends_with(&clap), "{}", e.message());
            }
        }
        assert_eq!(parse_options(&f("scale", "2.5"), &cpu).unwrap().scale, 2.5);
    }
}
