//! The routes of `patchscaler serve`.
//!
//! | route                          | what                                    |
//! |--------------------------------|-----------------------------------------|
//! | `GET /`, `/app.js`, `/style.css` | the page (embedded)                   |
//! | `GET /api/info`                | devices, presets, limits                |
//! | `POST /api/jobs`               | multipart: `image`, optional `hr`, `preset`, `scale`, `seed`, `device` |
//! | `GET /api/jobs/{id}`           | the job's state now (one `JobEvent`)    |
//! | `GET /api/jobs/{id}/events`    | server-sent events: one `JobEvent` JSON each |
//! | `GET /api/jobs/{id}/{file}`    | `result.png`, `bicubic.png`, `qmap.png`, `hr.png`; `?download=1` for an attachment |
//! | `DELETE /api/jobs/{id}`        | forget a job                            |
//!
//! Every error is a JSON `{"error": "one line"}` with a 4xx/5xx status.
//! Nothing the client sends is used as a path: file names only label the
//! job and name the download.

use super::jobs::{device_name, JobEvent, JobRequest, Jobs, Status, SubmitError};
use crate::cli::presets::Preset;
use crate::cli::memory::{max_input_pixels, usable_mib};
use crate::device::DeviceArg;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::ValueEnum;
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// What the handlers share.
pub struct AppState {
    pub jobs: Arc<Jobs>,
    pub devices: Vec<DeviceArg>,
    pub max_upload_bytes: usize,
    pub memory_limit_mib: u64,
    pub model_name: String,
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    // Two files and a few small fields; each file is checked on its own.
    let body_limit = state
        .max_upload_bytes
        .saturating_mul(2)
        .saturating_add(1 << 20);
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/info", get(info))
        .route("/api/jobs", axum::routing::post(create_job))
        .route("/api/jobs/{id}", get(job_status).delete(delete_job))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/{file}", get(job_file))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page") })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// An error the page shows as one line.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        let message = message.lines().next().unwrap_or("error").to_string();
        ApiError { status, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

async fn style_css() -> Response {
    asset(STYLE_CSS, "text/css; charset=utf-8")
}

fn mib(bytes: usize) -> String {
    let m = bytes as f64 / (1u64 << 20) as f64;
    if m >= 10.0 || m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

async fn info(State(s): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let queue: Vec<serde_json::Value> = s
        .jobs
        .load()
        .into_iter()
        .map(|(d, waiting, running)| json!({ "device": d, "waiting": waiting, "running": running }))
        .collect();
    Json(json!({
        "model": s.model_name,
        "devices": s.devices.iter().map(|d| device_name(*d)).collect::<Vec<_>>(),
        "presets": ["fast", "balanced", "quality"],
        "max_upload_bytes": s.max_upload_bytes,
        "memory_limit_mib": s.memory_limit_mib,
        "max_input_pixels_x4": max_input_pixels(usable_mib(s.memory_limit_mib, true), 4.0),
        "queue": queue,
    }))
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

/// Decodes `bytes` fully (not by extension), refusing more than
/// `max_pixels` before any pixel is decoded. Returns (width, height).
pub fn check_image(
    bytes: &[u8],
    label: &str,
    max_pixels: u64,
    limit_hint: &str,
) -> Result<(u32, u32), ApiError> {
    use image::ImageDecoder;
    let not_image = || {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{label}: not an image this server reads (PNG, JPEG, WebP, TIFF, BMP, ...)"),
        )
    };
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{label}: the file is empty"),
        ));
    }
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| not_image())?;
    let Some(format) = reader.format() else {
        return Err(not_image());
    };
    let decoder = reader.into_decoder().map_err(|_| not_image())?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{label}: the image has zero size ({w}x{h})"),
        ));
    }
    if (w as u64) * (h as u64) > max_pixels {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{label}: {w}x{h} is too large ({max_pixels} pixels at most {limit_hint})"),
        ));
    }
    // As `imageio::load::decode_checked`: the JPEG decoder fills missing
    // rows with grey and reports success.
    if format == image::ImageFormat::Jpeg && !crate::imageio::integrity::jpeg_is_complete(bytes) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{label}: truncated or corrupt (the JPEG data ends before its end marker)"),
        ));
    }
    image::DynamicImage::from_decoder(decoder).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{label}: corrupt or truncated image: {e}"),
        )
    })?;
    Ok((w, h))
}

async fn create_job(
    State(s): State<Arc<AppState>>,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let limit = s.max_upload_bytes;
    let mut mp = mp.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("send the image as multipart/form-data ({})", e.body_text()),
        )
    })?;
    let (mut image, mut hr) = (None, None);
    let (mut preset, mut scale, mut seed, mut device) = (
        "balanced".to_string(),
        "4".to_string(),
        "0".to_string(),
        "cpu".to_string(),
    );
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        match field.name().unwrap_or("") {
            "image" => {
                let name = display_name(field.file_name());
                image = Some((read_file(field, &name, limit).await?, name));
            }
            "hr" => {
                let name = display_name(field.file_name());
                let b = read_file(field, &name, limit).await?;
                // An empty file input sends an empty part: no HR.
                if !b.is_empty() {
                    hr = Some((b, name));
                }
            }
            "preset" => preset = read_text(field).await?,
            "scale" => scale = read_text(field).await?,
            "seed" => seed = read_text(field).await?,
            "device" => device = read_text(field).await?,
            _ => {
                read_file(field, "field", limit).await?;
            }
        }
    }
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let Some((image, name)) = image else {
        return Err(bad("choose an image to upscale".into()));
    };
    let preset = Preset::from_str(&preset, true)
        .map_err(|_| bad(format!("preset {preset:?}: use fast, balanced or quality")))?;
    let scale: f64 = scale
        .parse()
        .ok()
        .filter(|s: &f64| *s > 0.0 && *s <= 16.0)
        .ok_or_else(|| bad(format!("scale {scale:?}: give a number in (0, 16]")))?;
    let seed: u64 = seed
        .parse()
        .map_err(|_| bad(format!("seed {seed:?}: give a whole number >= 0")))?;
    let device = DeviceArg::from_str(&device, true)
        .ok()
        .filter(|d| s.devices.contains(d))
        .ok_or_else(|| {
            bad(format!(
                "device {device:?} is not available here (this server offers {})",
                s.devices
                    .iter()
                    .map(|d| device_name(*d))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    // Every job draws the qmap figure, so its reserve is kept too.
    let max_pixels = max_input_pixels(usable_mib(s.memory_limit_mib, true), scale);
    let hint = format!(
        "at x{scale} under the server's --memory-limit {} MiB",
        s.memory_limit_mib
    );
    let hr_max = (max_pixels as f64 * scale.max(1.0) * scale.max(1.0)) as u64;
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
        preset,
        scale,
        seed,
        device,
        max_pixels,
        memory_limit_mib: s.memory_limit_mib,
    };
    let id = s.jobs.submit(req).map_err(|e| match e {
        SubmitError::NoDevice(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
        SubmitError::QueueFull(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "events": format!("/api/jobs/{id}/events") })),
    ))
}

fn no_job() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such job (a job is dropped when its page goes away, and its images some minutes after it finished)",
    )
}

async fn job_status(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<JobEvent>, ApiError> {
    s.jobs.status(&id).map(Json).ok_or_else(no_job)
}

async fn delete_job(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.jobs.remove(&id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_job())
    }
}

fn sse_event(e: &JobEvent) -> Event {
    Event::default().data(serde_json::to_string(e).unwrap_or_else(|_| "{}".into()))
}

/// The job's events: its state now, each change, and every second while it
/// loads or runs (the running clock). The stream ends after `done` or
/// `failed`; dropping it earlier (the client went away) cancels the job
/// through the `WatchGuard` it holds.
async fn events(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (rx, guard) = s.jobs.subscribe(&id).ok_or_else(no_job)?;
    struct St {
        rx: watch::Receiver<Status>,
        _guard: super::jobs::WatchGuard,
        first: bool,
        ended: bool,
        tick: tokio::time::Interval,
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let st = St {
        rx,
        _guard: guard,
        first: true,
        ended: false,
        tick,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if st.ended {
            return None;
        }
        let event = loop {
            if st.first {
                st.first = false;
                st.tick.reset();
                break st.rx.borrow_and_update().current();
            }
            tokio::select! {
                changed = st.rx.changed() => {
                    if changed.is_err() {
                        // The job was dropped (cancelled elsewhere).
                        break JobEvent::Failed { error: "the job was cancelled".into() };
                    }
                    st.tick.reset();
                    break st.rx.borrow_and_update().current();
                }
                _ = st.tick.tick() => {
                    let now = st.rx.borrow().current();
                    if matches!(now, JobEvent::Loading { .. } | JobEvent::Running { .. }) {
                        break now;
                    }
                }
            }
        };
        st.ended = event.is_final();
        Some((Ok(sse_event(&event)), st))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(2))))
}

#[derive(Deserialize)]
struct FileQuery {
    download: Option<String>,
}

async fn job_file(
    State(s): State<Arc<AppState>>,
    Path((id, file)): Path<(String, String)>,
    Query(q): Query<FileQuery>,
) -> Result<Response, ApiError> {
    let out = s.jobs.output(&id).ok_or_else(no_job)?;
    let bytes = match file.as_str() {
        "result.png" => out.result.clone(),
        "bicubic.png" => out.bicubic.clone(),
        "qmap.png" => out.qmap.clone(),
        "hr.png" => out.hr.clone().ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "this job was given no HR image")
        })?,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "no such file")),
    };
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if q.download.is_some() {
        let name = if file == "result.png" {
            out.download_name.clone()
        } else {
            format!("{}_{file}", out.download_name.trim_end_matches(".png"))
        };
        // The name holds only [A-Za-z0-9._-] (see `work::download_name`).
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_reduced_to_a_label() {
        assert_eq!(display_name(Some("C:\\x\\cat.png")), "cat.png");
        assert_eq!(display_name(Some("../../a\n.png")), "a.png");
        assert_eq!(display_name(None), "image");
    }

    #[test]
    fn text_is_not_an_image_and_big_images_are_refused_before_decoding() {
        let e = check_image(b"hello, world", "t.png", 100, "").unwrap_err();
        assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let mut png = Cursor::new(Vec::new());
        image::RgbImage::new(20, 10)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        let png = png.into_inner();
        assert_eq!(check_image(&png, "a", 200, "").unwrap(), (20, 10));
        let e = check_image(&png, "a", 199, "here").unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.message.contains("20x10 is too large"), "{}", e.message);
        let e = check_image(&png[..png.len() / 2], "a", 200, "").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.message);
        // A JPEG cut before its end marker, which the decoder alone would accept.
        let mut jpg = Cursor::new(Vec::new());
        image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 7]))
            .write_to(&mut jpg, image::ImageFormat::Jpeg)
            .unwrap();
        let jpg = jpg.into_inner();
        assert_eq!(check_image(&jpg, "j.jpg", 2000, "").unwrap(), (32, 32));
        let e = check_image(&jpg[..jpg.len() - 2], "j.jpg", 2000, "").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("j.jpg: truncated or corrupt"), "{}", e.message);
    }
}
