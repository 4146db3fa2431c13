//! The two API calls, with the generated client's errors turned into [`Error`].

use std::time::SystemTime;

use futures_util::StreamExt;
use progenitor_client::{ByteStream, OperationInfo, ResponseValue};
use reqwest::{
    header::{HeaderMap, HeaderValue, ACCEPT},
    Method, Url,
};

use crate::{
    error::{shorten, Error, BODY_SNIPPET_CHARS},
    hooks,
    request::ImageToVideo,
    retry::{parse_retry_after, Failure},
    task::{self, Task},
    types, Client,
};

impl Client {
    /// Validates the request, then creates the task and returns its id. A broken rule
    /// returns [`Error::InvalidInput`] and sends nothing.
    ///
    /// The create call is retried only where the task was certainly not created (see
    /// [`RetryPolicy`](crate::RetryPolicy)), so one call never bills two tasks.
    pub async fn create(&self, request: &ImageToVideo) -> Result<String, Error> {
        let body = request.build()?;
        let kind = crate::Learned::kind(request.model_id().as_str(), request.duration_seconds());
        let response = self.raw.create_image_to_video().x_runway_version(&*self.runway_version).body(body).send().await;
        let id = match response {
            Ok(r) => r.into_inner().id,
            Err(e) => return Err(map_error(e).await),
        };
        if id.trim().is_empty() {
            return Err(Error::Decode { message: "the service returned an empty task id".into(), body: String::new() });
        }
        tracing::info!(task_id = %id, "task created");
        self.learning.created(&id, kind);
        Ok(id)
    }

    /// One poll: the task as the service sees it now, in either shape, normalised.
    ///
    /// A task too fresh to be visible gives an [`Error::Api`] for which
    /// [`Error::is_task_not_exist`] is true; [`Client::wait`] handles that for you.
    pub async fn get_task(&self, id: &str) -> Result<Task, Error> {
        // `.` and `..` would be resolved away as path segments: `GET /runwayml/v1/tasks`.
        if id.trim().is_empty() || id.contains(['/', '?', '#', '\\']) || id == "." || id == ".." {
            return Err(Error::invalid("id", format!("{id:?}"), "must be a task id as returned by create"));
        }
        let retry = &progenitor_client::ClientInfo::inner(&self.raw).0.retry;
        // One retry budget for the whole poll: the hooks' retries and the re-polls below draw on it.
        // Boxed: the loop holds the request under way (about 1.9 KB), and every waiting task holds
        // this future; boxed, it is 88 bytes while no poll is under way.
        Box::pin(async {
            let mut spent = 0;
            loop {
                // The hooks retried what failed before the body was read; what fails while reading
                // or decoding it (a body cut short, a proxy's page on 200) is a passing fault too,
                // and a poll is free to repeat.
                let error = match self.send_poll(id, &mut spent).await {
                    Ok(response) => return task_from(response),
                    Err(progenitor_client::Error::InvalidResponsePayload(body, e)) => {
                        // The generated decoder is strict; an envelope whose nested task is
                        // incomplete is still read, for its gateway fields.
                        if let Some(task) =
                            task::without_incomplete_nested_task(&body).and_then(|r| Task::try_from(r).ok())
                        {
                            return Ok(task);
                        }
                        progenitor_client::Error::InvalidResponsePayload(body, e)
                    }
                    Err(e @ progenitor_client::Error::ResponseBodyError(_)) => e,
                    Err(e) => return Err(map_error(e).await),
                };
                let next = retry.take_retry(&mut spent).filter(|_| retry.should_retry(false, Failure::Undecodable));
                let Some(n) = next else { return Err(map_error(error).await) };
                tracing::debug!(task_id = %id, error = %error, "poll answer unreadable; polling again");
                tokio::time::sleep(retry.delay(n, None)).await;
            }
        })
        .await
    }
}

impl Client {
    /// Sends one poll and decodes its answer: what `self.raw.get_task()...send()` does, through
    /// the same hooks and into the same generated type, minus the generated builder's per-call
    /// work (see [`PollRoute`]).
    async fn send_poll(
        &self,
        id: &str,
        spent: &mut u32,
    ) -> Result<types::TaskResponse, progenitor_client::Error<ByteStream>> {
        let info = OperationInfo { operation_id: "get_task" };
        let request = || self.poll_route.request(id);
        let (response, body) = hooks::send(&self.raw, request, &info, spent, hooks::Body::Beside).await?;
        match response.status().as_u16() {
            200 => task::decode_response(&body).map_err(|e| progenitor_client::Error::InvalidResponsePayload(body, e)),
            // Errors are rare: the response is rebuilt around its body for the common error path.
            status @ 400..=599 => {
                let mut rebuilt =
                    http::Response::builder().status(status).body(body).expect("a status from a response");
                *rebuilt.headers_mut() = response.headers().clone();
                Err(progenitor_client::Error::ErrorResponse(ResponseValue::stream(reqwest::Response::from(rebuilt))))
            }
            _ => Err(progenitor_client::Error::UnexpectedResponse(response)),
        }
    }
}

/// The poll request (`GET /runwayml/v1/tasks/{id}` in the spec), prepared once per client.
///
/// Polling is the one call a client makes over and over — 10,000 waits on one client poll
/// thousands of times a second — so its request is built here from parts computed at build time
/// instead of by the generated builder, which formats the URL, converts the version header and
/// adds progenitor's `api-version` header (which the hooks then remove) on every call. The
/// request is the generated one, byte for byte: `tests/spec_agreement.rs` sends both and compares
/// what the server received. Everything after building — the hooks, the decoding into the
/// generated `TaskResponse` — is shared with the generated client.
#[derive(Debug)]
pub(crate) struct PollRoute {
    /// `{base_url}/runwayml/v1/tasks`, parsed once; each poll appends the id as a path segment.
    prefix: Url,
    /// `Accept` and `X-Runway-Version`; the hooks add the key.
    headers: HeaderMap,
}

impl PollRoute {
    pub(crate) fn new(base_url: &str, runway_version: HeaderValue) -> PollRoute {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert("x-runway-version", runway_version);
        let prefix = Url::parse(&format!("{base_url}/runwayml/v1/tasks")).expect("the base URL was checked at build");
        PollRoute { prefix, headers }
    }

    fn request(&self, id: &str) -> reqwest::Request {
        let mut url = self.prefix.clone();
        // `url`'s path-segment set is the generated client's `encode_path` set (controls, space,
        // `"#<>?`{}/%`), so both build the same URL; spec_agreement.rs checks odd ids.
        url.path_segments_mut().expect("an http(s) URL takes path segments").push(id);
        let mut request = reqwest::Request::new(Method::GET, url);
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// The kind of task a request creates, for learning its timings: model and duration, read from
/// the request as sent (so whatever types the spec gives them).
/// The task in a decoded poll answer; an envelope without one (`task_not_exist` on 200) is an
/// API error carrying the envelope's code.
fn task_from(response: types::TaskResponse) -> Result<Task, Error> {
    Task::try_from(response).map_err(|code| Error::Api {
        status: 200,
        message: Some(format!("the service answered {code} without a task")),
        code: Some(code),
        body: String::new(),
        retry_after: None,
    })
}

/// Maps the generated client's error onto the crate's planes.
pub(crate) async fn map_error(e: progenitor_client::Error<ByteStream>) -> Error {
    use progenitor_client::Error as E;
    match e {
        E::InvalidRequest(message) | E::Custom(message) => Error::invalid("request", "(generated)", message),
        E::CommunicationError(e) | E::ResponseBodyError(e) | E::InvalidUpgrade(e) => Error::transport(e),
        E::InvalidResponsePayload(body, e) => {
            Error::Decode { message: e.to_string(), body: shorten(&String::from_utf8_lossy(&body), BODY_SNIPPET_CHARS) }
        }
        E::ErrorResponse(response) => api_error(response).await,
        E::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            Error::Api {
                status,
                code: None,
                message: Some("unexpected status".into()),
                body: String::new(),
                retry_after: None,
            }
        }
    }
}

/// Reads an error answer: the hooks already cut its body to a bounded size.
async fn api_error(response: ResponseValue<ByteStream>) -> Error {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let mut stream = response.into_inner().into_inner();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
    }
    let (code, message) = decode_error_body(&body);
    Error::Api {
        status,
        code,
        message,
        body: shorten(&String::from_utf8_lossy(&body), BODY_SNIPPET_CHARS),
        retry_after,
    }
}

/// Code and message from any error-body shape this stack sends; `(None, None)` for others.
pub fn decode_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    // Each shape is tried on its own: the generated `ErrorBody` flattens the three `anyOf`
    // branches, and serde's flatten lets a failed branch (`NestedError` on `{"error": "text"}`)
    // consume the `error` key before the next branch sees it.
    let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(body) else { return (None, None) };
    let text = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    if let Ok(g) = serde_json::from_value::<types::GatewayError>(parsed.clone()) {
        return (text(Some(g.code)), text(g.message));
    }
    if let Ok(n) = serde_json::from_value::<types::NestedError>(parsed.clone()) {
        let code = match n.error.code {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        return (text(code).or(text(n.error.type_)), text(n.error.message));
    }
    if let Ok(p) = serde_json::from_value::<types::PlainError>(parsed) {
        return (None, text(Some(p.error)));
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::decode_error_body;

    type Case = (&'static [u8], (Option<&'static str>, Option<&'static str>));

    #[test]
    fn every_error_body_shape_yields_code_and_message() {
        let cases: [Case; 7] = [
            (
                br#"{"code":"task_not_exist","message":"task_not_exist","data":null}"#,
                (Some("task_not_exist"), Some("task_not_exist")),
            ),
            (
                br#"{"error":{"message":"Invalid token","type":"comet_api_error","code":"invalid_api_key"}}"#,
                (Some("invalid_api_key"), Some("Invalid token")),
            ),
            (
                br#"{"error":{"message":"slow down","type":"rate_limit","code":null}}"#,
                (Some("rate_limit"), Some("slow down")),
            ),
            (br#"{"error":{"message":"x","code":429}}"#, (Some("429"), Some("x"))),
            (br#"{"error":"promptImage must be a valid URL"}"#, (None, Some("promptImage must be a valid URL"))),
            (b"<html><body>502 Bad Gateway</body></html>", (None, None)),
            (b"", (None, None)),
        ];
        for (body, (code, message)) in cases {
            let (c, m) = decode_error_body(body);
            assert_eq!((c.as_deref(), m.as_deref()), (code, message), "{}", String::from_utf8_lossy(body));
        }
    }
}
