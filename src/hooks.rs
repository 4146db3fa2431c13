//! The one place where every API request passes: authentication, the request limit, retries,
//! bounded body reading and tracing. Plugged into the generated client as its `ClientHooks`.

use std::{
    fmt,
    sync::Arc,
    time::{Instant, SystemTime},
};

use bytes::{Bytes, BytesMut};
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::{
    header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER},
    StatusCode, Version,
};
use tokio::sync::Semaphore;

use crate::{
    generated,
    retry::{parse_retry_after, Failure, RetryPolicy},
    types,
};

/// A 2xx body larger than this is cut (and then fails to decode) rather than held in memory.
pub(crate) const MAX_SUCCESS_BODY: usize = 4 << 20;
/// Error bodies are only needed for a code and a message; a proxy's 1 GB page is not read.
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;

/// The operation id of the create call in the spec: the only call that costs money.
const CREATE_OPERATION: &str = "create_image_to_video";
/// The operation id of the poll call in the spec.
const POLL_OPERATION: &str = "get_task";

/// Configuration the hooks need, carried inside the generated client.
#[derive(Clone)]
pub struct Inner(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    /// `Bearer <key>`, marked sensitive so reqwest never prints it.
    pub(crate) authorization: HeaderValue,
    pub(crate) retry: RetryPolicy,
    pub(crate) limit: Semaphore,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("authorization", &"<redacted>")
            .field("retry", &self.0.retry)
            .field("available_permits", &self.0.limit.available_permits())
            .finish()
    }
}

impl ClientHooks<Inner> for generated::Client {
    async fn exec(&self, mut request: reqwest::Request, info: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        let shared = &self.inner().0;
        // progenitor adds the spec's `info.version` as `api-version`; the service has no use for it.
        request.headers_mut().remove("api-version");
        request.headers_mut().insert(AUTHORIZATION, shared.authorization.clone());
        let is_create = info.operation_id == CREATE_OPERATION;

        let mut retry = 0;
        loop {
            // JSON bodies are in memory, so a request can always be cloned for another attempt.
            let attempt = request.try_clone().expect("API requests have in-memory bodies");
            let started = Instant::now();
            let outcome = {
                let _permit = shared.limit.acquire().await.expect("the request limit is never closed");
                match self.client().execute(attempt).await {
                    Ok(response) => buffer(response).await,
                    Err(e) => Err(e),
                }
            };
            let failure = match &outcome {
                Ok(r) if r.status.is_success() && info.operation_id == POLL_OPERATION && !is_task_answer(&r.body) => {
                    Some(Failure::Undecodable)
                }
                Ok(r) if r.status.is_success() => None,
                Ok(r) => Some(Failure::Status(r.status.as_u16())),
                Err(e) if e.is_connect() => Some(Failure::Connect),
                Err(_) => Some(Failure::AfterSend),
            };
            tracing::debug!(
                operation = info.operation_id,
                method = %request.method(),
                path = request.url().path(),
                status = outcome.as_ref().ok().map(|r| r.status.as_u16()),
                error = outcome.as_ref().err().map(tracing::field::display),
                attempt = retry + 1,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cometapi request"
            );
            let give_up = match failure {
                None => true,
                Some(failure) => {
                    retry >= shared.retry.max_retries_value() || !shared.retry.should_retry(is_create, failure)
                }
            };
            if give_up {
                return outcome.map(Buffered::into_response);
            }
            let retry_after = outcome.as_ref().ok().and_then(|r| {
                let value = r.headers.get(RETRY_AFTER)?.to_str().ok()?;
                parse_retry_after(value, SystemTime::now())
            });
            let pause = shared.retry.delay(retry, retry_after);
            tracing::debug!(operation = info.operation_id, ?failure, pause_ms = pause.as_millis() as u64, "retrying");
            tokio::time::sleep(pause).await;
            retry += 1;
        }
    }
}

/// A response whose body has been read (up to a cap) and the connection released.
struct Buffered {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Buffered {
    /// Back into the response the generated client expects; it decodes the body itself.
    fn into_response(self) -> reqwest::Response {
        let mut rebuilt = http::Response::new(self.body);
        *rebuilt.status_mut() = self.status;
        *rebuilt.version_mut() = self.version;
        *rebuilt.headers_mut() = self.headers;
        rebuilt.headers_mut().remove(CONTENT_LENGTH);
        reqwest::Response::from(rebuilt)
    }
}

/// Whether a 2xx poll body is something the task decoder can read (either shape). A proxy's
/// HTML page or a truncated body on 200 is a passing fault, worth another poll.
fn is_task_answer(body: &[u8]) -> bool {
    serde_json::from_slice::<types::TaskResponse>(body).is_ok()
}

/// Reads the body into memory, up to a cap, while the request still holds its permit, so a
/// response counts against the request limit until its connection is free again. A body past
/// the cap is cut and the connection dropped: the rest is never read, however large.
async fn buffer(mut response: reqwest::Response) -> reqwest::Result<Buffered> {
    let cap = if response.status().is_success() { MAX_SUCCESS_BODY } else { MAX_ERROR_BODY };
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == cap {
            break;
        }
    }
    Ok(Buffered {
        status: response.status(),
        version: response.version(),
        headers: std::mem::take(response.headers_mut()),
        body: body.freeze(),
    })
}
