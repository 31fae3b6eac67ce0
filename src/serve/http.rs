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
//! job and name the download. Before any route, `guard::check` refuses a
//! foreign `Host` or `Origin` and an `/api` call without the token.

pub use super::api_error::{mib, ApiError};
use super::guard;
pub use super::state::AppState;
use super::jobs::{device_name, JobEvent, Status};
use super::upload::{body_limit, create_job};
use crate::app::memory::{max_input_pixels, usable_mib};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::Stream;
use serde::Deserialize;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower_http::timeout::RequestBodyTimeoutLayer;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");


/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    let access = Arc::clone(&state.access);
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
        .layer(DefaultBodyLimit::max(body_limit(state.max_upload_bytes)))
        .layer(RequestBodyTimeoutLayer::new(state.body_timeout))
        .layer(axum::middleware::from_fn_with_state(access, guard::check))
        .with_state(state)
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
            // The page's URL may hold the token.
            (header::REFERRER_POLICY, "no-referrer"),
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

fn no_job() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such job (a job is dropped when its page goes away, and its images some minutes after it finished or when newer results fill the server's room)",
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
