//! The simulator's HTTP handlers (axum).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::scenario::{Fault, Outcome, ResponseShape, Route};
use super::state::{Phase, RecordedRequest, State, TaskRecord};
use crate::types;

/// The playable MP4 served as every succeeded task's output (1 s, 160x90, H.264, faststart).
pub(crate) const SAMPLE_MP4: &[u8] = include_bytes!("sample.mp4");

pub(crate) type Shared = Arc<Mutex<State>>;

/// Path of the create route.
pub(crate) const CREATE_PATH: &str = "/runwayml/v1/image_to_video";
/// Path prefix of the output files.
pub(crate) const FILES_PREFIX: &str = "/files/";

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route(CREATE_PATH, any(create))
        .route("/runwayml/v1/tasks/{id}", any(poll))
        .route("/files/{file}", any(download))
        .fallback(fallback)
        .with_state(state)
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn record(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes, route: Option<Route>) {
    lock(state).log.push(RecordedRequest {
        method: method.clone(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        headers: headers.clone(),
        body: body.clone(),
        route,
    });
}

// ---------------------------------------------------------------- answers

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("serialisable");
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
}

/// OpenAI-style gateway error: `{"error":{"message","type","code"}}`.
fn nested_error(status: StatusCode, message: &str, type_: &str, code: &str) -> Response {
    let body = types::NestedError {
        error: types::NestedErrorDetail {
            code: Some(Value::String(code.to_string())),
            message: Some(message.to_string()),
            type_: Some(type_.to_string()),
        },
    };
    json_response(status, &body)
}

/// Gateway task error: `{"code","message","data":null}`.
fn gateway_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = types::GatewayError { code: code.to_string(), data: None, message: Some(message.to_string()) };
    let mut value = serde_json::to_value(body).expect("serialisable");
    value["data"] = Value::Null;
    json_response(status, &value)
}

/// Runway error passed through: `{"error":"..."}`.
fn plain_error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(status, &types::PlainError { error: message.into() })
}

fn task_not_exist() -> Response {
    gateway_error(StatusCode::BAD_REQUEST, "task_not_exist", "task_not_exist")
}

fn fault_response(fault: &Fault) -> Response {
    match fault {
        Fault::RateLimit { retry_after, .. } => {
            let mut response = nested_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for this API key, please retry later",
                "rate_limit_error",
                "rate_limit_exceeded",
            );
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            response
        }
        Fault::ServerError { status, .. } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            gateway_error(
                status,
                "upstream_error",
                &format!("upstream error: {}", status.canonical_reason().unwrap_or("error")),
            )
        }
        Fault::GarbageBody { .. } => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            // A body cut short: not JSON.
            &b"{\"code\":\"success\",\"message\":\"\",\"data\":{\"task_id\":\"\x00\xff<truncated"[..],
        )
            .into_response(),
        Fault::HtmlErrorPage { status, .. } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            let page = format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            );
            (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], page)
                .into_response()
        }
        Fault::Slow { .. } => StatusCode::OK.into_response(), // never an answering fault
    }
}

async fn delayed(delay: Option<Duration>, response: Response) -> Response {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

fn method_not_allowed(method: &Method, uri: &Uri) -> Response {
    nested_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("Invalid method ({method} {})", uri.path()),
        "invalid_request_error",
        "method_not_allowed",
    )
}

/// `Authorization: Bearer <key>`; `Some(401)` when missing or wrong.
fn check_key(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let key = lock(state).api_key.clone();
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = given.and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    match token {
        Some(token) if token == key => None,
        Some(_) => Some(nested_error(
            StatusCode::UNAUTHORIZED,
            "Invalid token, please check your API key",
            "comet_api_error",
            "invalid_api_key",
        )),
        None => Some(nested_error(
            StatusCode::UNAUTHORIZED,
            "No API key provided: send `Authorization: Bearer <key>`",
            "comet_api_error",
            "invalid_api_key",
        )),
    }
}

// ---------------------------------------------------------------- create

async fn create(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body, Some(Route::Create));
    if method != Method::POST {
        return method_not_allowed(&method, &uri);
    }
    if let Some(denied) = check_key(&state, &headers) {
        return denied;
    }
    // Gateway/proxy faults answer before the request reaches the service.
    let pick = lock(&state).take_faults(Route::Create, true, |f| !answered_after_create(f));
    if let Some(fault) = pick.answer {
        return delayed(pick.delay, fault_response(&fault)).await;
    }
    let token = lock(&state).take_create_token();
    if let Err(seconds) = token {
        let fault = Fault::RateLimit { times: 1, retry_after: Some(seconds) };
        return delayed(pick.delay, fault_response(&fault)).await;
    }
    let model_rules = lock(&state).scenario.check_models;
    let response =
        match check_version(&headers).and_then(|()| check_json(&headers)).and_then(|()| validate(&body, model_rules)) {
            Err(message) => plain_error(StatusCode::BAD_REQUEST, message),
            Ok(()) => {
                let mut guard = lock(&state);
                let id = guard.create_task();
                // A server error on create is answered after the task exists: the id is lost.
                let lost = guard.take_faults(Route::Create, false, answered_after_create);
                drop(guard);
                match lost.answer {
                    Some(fault) => fault_response(&fault),
                    None => json_response(StatusCode::OK, &types::CreateTaskResponse { id }),
                }
            }
        };
    delayed(pick.delay, response).await
}

/// Faults that mean "the service handled it, the answer was lost or mangled".
fn answered_after_create(fault: &Fault) -> bool {
    matches!(fault, Fault::ServerError { .. } | Fault::GarbageBody { .. })
}

fn check_version(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get("x-runway-version") else {
        return Err("You must provide an X-Runway-Version header (e.g. 2024-11-06)".to_string());
    };
    let text = value.to_str().unwrap_or("").trim();
    let b = text.as_bytes();
    let date_like = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    // A calendar date, not just its shape: month 01-12, day 01-31.
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    if !date_like || !(1..=12).contains(&number(5..7)) || !(1..=31).contains(&number(8..10)) {
        return Err(format!("Invalid X-Runway-Version header {text:?}: expected a version such as 2024-11-06"));
    }
    Ok(())
}

/// `Content-Type: application/json` (parameters such as `charset` allowed; `+json` types too).
fn check_json(headers: &HeaderMap) -> Result<(), String> {
    let given = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase());
    let essence = given.as_deref().map(|v| v.split(';').next().unwrap_or("").trim());
    match essence {
        Some(t) if t == "application/json" || (t.starts_with("application/") && t.ends_with("+json")) => Ok(()),
        Some(t) => Err(format!("Unsupported Content-Type {t:?}: send the body as application/json")),
        None => Err("Missing Content-Type: send the body as application/json".to_string()),
    }
}

/// Validates a create body the way the service does, with the crate's own catalogue: the field
/// rules for every model, and a known model's own rules unless `model_rules` is off. `Err`
/// carries the human text of the 400, naming the field (and the model, for its rules).
pub(crate) fn validate(body: &[u8], model_rules: bool) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}"))?;
    crate::Catalogue::builtin().check(&value, model_rules).map_err(|e| format!("Validation of body failed: {e}"))
}

// ---------------------------------------------------------------- poll

async fn poll(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body, Some(Route::Poll));
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed(&method, &uri);
    }
    if let Some(denied) = check_key(&state, &headers) {
        return denied;
    }
    let (pick, answer) = {
        let mut guard = lock(&state);
        let pick = guard.take_faults(Route::Poll, true, |_| true);
        let answer = if pick.answer.is_some() {
            None
        } else {
            let base_url = guard.base_url.clone();
            match guard.tasks.get_mut(&id) {
                None => Some(task_not_exist()),
                Some(task) => {
                    if !task.poll_at(Instant::now()) {
                        Some(task_not_exist())
                    } else {
                        let envelope = match task.shape {
                            ResponseShape::Plain => false,
                            ResponseShape::Envelope => true,
                            ResponseShape::Alternating => task.visible_polls % 2 == 0,
                        };
                        let runway = runway_task(task, &base_url, Instant::now());
                        Some(if envelope {
                            json_response(StatusCode::OK, &envelope_of(task, runway, Instant::now()))
                        } else {
                            json_response(StatusCode::OK, &runway)
                        })
                    }
                }
            }
        };
        (pick, answer)
    };
    let response = match (pick.answer, answer) {
        (Some(fault), _) => fault_response(&fault),
        (None, Some(answer)) => answer,
        (None, None) => task_not_exist(),
    };
    delayed(pick.delay, response).await
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Two decimals, rounded down: a running task never reports 1.
fn floor2(x: f64) -> f64 {
    (x * 100.0).floor() / 100.0
}

/// The output URL of a task on this server.
pub(crate) fn output_url(base_url: &str, id: &str) -> String {
    format!("{base_url}{FILES_PREFIX}{id}.mp4")
}

/// The plain Runway task at `now`.
pub(crate) fn runway_task(task: &TaskRecord, base_url: &str, now: Instant) -> types::RunwayTask {
    let mut out = types::RunwayTask {
        created_at: Some(rfc3339(task.created_wall)),
        failure: None,
        failure_code: None,
        id: task.id.clone(),
        output: None,
        progress: None,
        status: String::new(),
    };
    match task.phase_at(now) {
        Phase::Throttled => out.status = "THROTTLED".into(),
        Phase::Pending => out.status = "PENDING".into(),
        Phase::Running { progress, .. } => {
            out.status = "RUNNING".into();
            if task.report_progress {
                out.progress = Some(json!(floor2(progress)));
            }
        }
        Phase::Done { .. } => match &task.outcome {
            Outcome::Succeed => {
                out.status = "SUCCEEDED".into();
                let mut url = output_url(base_url, &task.id);
                if let Some(ttl) = task.output_url_ttl {
                    // Signed like a CDN's URL: valid until `expires` ms after the task's creation.
                    let expires = (now + ttl).saturating_duration_since(task.created).as_millis();
                    url.push_str(&format!("?expires={expires}"));
                }
                out.output = Some(vec![url]);
            }
            Outcome::Fail { code, message } => {
                out.status = "FAILED".into();
                out.failure = Some(message.clone());
                out.failure_code = Some(code.clone());
            }
            Outcome::Cancel => out.status = "CANCELLED".into(),
            Outcome::NeverFinish => out.status = "RUNNING".into(), // not reached: phase_at never ends it
        },
    }
    out
}

/// CometAPI's envelope around `runway` at `now`.
pub(crate) fn envelope_of(task: &TaskRecord, runway: types::RunwayTask, now: Instant) -> types::CometEnvelope {
    let wall = |at: Instant| unix(task.created_wall + at.saturating_duration_since(task.created));
    let phase = task.phase_at(now);
    let (status, progress, start_time, finish_time, fail_reason) = match &phase {
        Phase::Throttled | Phase::Pending => ("QUEUED", Some("0%".to_string()), 0, 0, ""),
        Phase::Running { progress, started } => {
            let pct = task.report_progress.then(|| format!("{}%", (progress * 100.0).floor() as i64));
            ("IN_PROGRESS", pct, wall(*started), 0, "")
        }
        Phase::Done { started, finished } => match &task.outcome {
            Outcome::Succeed => ("SUCCESS", Some("100%".to_string()), wall(*started), wall(*finished), ""),
            Outcome::Fail { message, .. } => {
                ("FAILURE", Some("100%".to_string()), wall(*started), wall(*finished), message.as_str())
            }
            Outcome::Cancel => ("FAILURE", Some("100%".to_string()), wall(*started), wall(*finished), "task cancelled"),
            Outcome::NeverFinish => ("IN_PROGRESS", None, wall(*started), 0, ""),
        },
    };
    types::CometEnvelope {
        code: "success".to_string(),
        message: Some(String::new()),
        data: Some(types::GatewayTask {
            action: Some("IMAGE_TO_VIDEO".to_string()),
            data: Some(runway),
            fail_reason: Some(fail_reason.to_string()),
            finish_time: Some(finish_time),
            progress: progress.map(Value::String),
            result_url: None,
            start_time: Some(start_time),
            status: Some(status.to_string()),
            submit_time: Some(unix(task.created_wall)),
            task_id: Some(task.id.clone()),
            video_url: None,
        }),
    }
}

// ---------------------------------------------------------------- download

async fn download(
    AxState(state): AxState<Shared>,
    Path(file): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body, Some(Route::Download));
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed").into_response();
    }
    let pick = {
        let mut guard = lock(&state);
        let pick = guard.take_faults(Route::Download, true, |_| true);
        let now = Instant::now();
        let task = file.strip_suffix(".mp4").and_then(|id| guard.tasks.get(id));
        let available = task.is_some_and(|task| {
            matches!(task.outcome, Outcome::Succeed) && matches!(task.phase_at(now), Phase::Done { .. })
        });
        let expired = task.is_some_and(|task| task.output_url_ttl.is_some() && !signature_valid(task, &uri, now));
        (pick, available && !expired, expired)
    };
    let (pick, available, expired) = (pick.0, pick.1, pick.2);
    if expired && pick.answer.is_none() {
        let denied = (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        )
            .into_response();
        return delayed(pick.delay, denied).await;
    }
    let response = match pick.answer {
        Some(Fault::GarbageBody { .. }) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "video/mp4")], &b"not a video: the CDN sent garbage"[..]).into_response()
        }
        Some(fault) => fault_response(&fault),
        None if available => serve_file(&headers),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        )
            .into_response(),
    };
    delayed(pick.delay, response).await
}

/// Whether the URL's `expires` (ms after the task's creation) is still ahead of `now`.
fn signature_valid(task: &TaskRecord, uri: &Uri, now: Instant) -> bool {
    let expires = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("expires="))
        .and_then(|v| v.parse::<u64>().ok());
    expires.is_some_and(|ms| task.created + Duration::from_millis(ms) > now)
}

/// The sample MP4 as a CDN serves it: whole, or one byte range (`Range: bytes=a-b`, `a-`, `-n`)
/// with 206, or 416 for a range past the end.
fn serve_file(headers: &HeaderMap) -> Response {
    let len = SAMPLE_MP4.len();
    let common = [
        (header::CONTENT_TYPE, HeaderValue::from_static("video/mp4")),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")),
    ];
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| parse_range(v, len));
    match range {
        None => (StatusCode::OK, common, Bytes::from_static(SAMPLE_MP4)).into_response(),
        Some(Some((start, end))) => {
            let content_range = format!("bytes {start}-{end}/{len}");
            let mut response =
                (StatusCode::PARTIAL_CONTENT, common, Bytes::from_static(&SAMPLE_MP4[start..=end])).into_response();
            response.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&content_range).expect("ascii"));
            response
        }
        Some(None) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"));
            response
        }
    }
}

/// `None`: no usable single range (serve the whole file); `Some(None)`: unsatisfiable;
/// `Some(Some((first, last)))`: inclusive byte positions.
fn parse_range(value: &str, len: usize) -> Option<Option<(usize, usize)>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multipart ranges: a CDN may answer the whole file instead
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        (true, true) => return None,
        (true, false) => {
            let n: usize = b.parse().ok()?;
            (n > 0 && len > 0).then(|| (len.saturating_sub(n), len - 1))
        }
        (false, _) => {
            let first: usize = a.parse().ok()?;
            if first >= len {
                return Some(None);
            }
            let last: usize = if b.is_empty() { len - 1 } else { b.parse().ok()? };
            if last < first {
                return None; // syntactically invalid: ignored, like HTTP says
            }
            Some((first, last.min(len - 1)))
        }
    };
    Some(range)
}

// ---------------------------------------------------------------- anything else

async fn fallback(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    record(&state, &method, &uri, &headers, &body, None);
    nested_error(StatusCode::NOT_FOUND, &format!("Invalid URL ({method} {})", uri.path()), "invalid_request_error", "")
}
