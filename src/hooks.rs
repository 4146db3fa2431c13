//! The one place where every API request passes: authentication, the request limit, retries,
//! bounded body reading and tracing. Plugged into the
//! generated client as its `ClientHooks`.

use std::{
    fmt,
    sync::Arc,
    time::{Instant, SystemTime},
};

use bytes::{Bytes, BytesMut};
use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::{
    header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER},
    ResponseBuilderExt,
};
use tokio::sync::Semaphore;

use crate::{
    generated,
    retry::{parse_retry_after, Failure, RetryPolicy},
};

/// A 2xx body larger than this is cut (and then fails to decode) rather than held in memory.
pub(crate) const MAX_SUCCESS_BODY: usize = 4 << 20;
/// Error bodies are only needed for a code and a message; a proxy's 1 GB page is not read.
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;

/// The operation id of the create call in the spec: the only call that costs money.
const CREATE_OPERATION: &str = "create_image_to_video";

/// Configuration the hooks need, carried inside the generated client.
#[derive(Clone)]
pub struct Inner(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    /// `Bearer <key>`, marked sensitive so reqwest never prints it.
    pub(crate) authorization: HeaderValue,
    pub(crate) retry: RetryPolicy,
    pub(crate) limit: Arc<Semaphore>,
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
    async fn exec(&self, request: reqwest::Request, info: &OperationInfo) -> reqwest::Result<reqwest::Response> {
        // JSON bodies are in memory, so a request can always be cloned for another attempt.
        let again = || request.try_clone().expect("API requests have in-memory bodies");
        send(self, again, info, &mut 0, Body::InResponse).await.map(|(response, _)| response)
    }
}

/// Where [`send`] leaves the answer's body, which it always reads inside the request's slot.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// In the response, rebuilt around it: what the generated client expects.
    InResponse,
    /// Beside the response (which comes back read): for a caller that decodes the body at once
    /// (the poll path), saving a response rebuild and a second pass over the body.
    Beside,
}

/// Sends an API request, built by `request` for each attempt: the hooks' work for the generated
/// client's calls, and the poll path's way in. `spent` counts the retries of the whole call, so
/// that a caller sending again for its own reasons (`get_task` re-polling an unreadable answer)
/// draws on the same budget.
pub(crate) async fn send(
    client: &generated::Client,
    request: impl Fn() -> reqwest::Request,
    info: &OperationInfo,
    spent: &mut u32,
    body: Body,
) -> reqwest::Result<(reqwest::Response, Bytes)> {
    let shared = &client.inner().0;
    let is_create = info.operation_id == CREATE_OPERATION;

    let mut attempt_number = 1;
    loop {
        let mut attempt = request();
        // progenitor adds the spec's `info.version` as `api-version`; the service has no use for it.
        attempt.headers_mut().remove("api-version");
        attempt.headers_mut().insert(AUTHORIZATION, shared.authorization.clone());
        let path = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (attempt.method().clone(), attempt.url().path().to_string()));
        let started = path.is_some().then(Instant::now);
        let outcome = {
            let permit = shared.limit.clone().acquire_owned().await.expect("the request limit is never closed");
            match client.client().execute(attempt).await {
                Ok(response) => bounded(response, permit, body).await,
                Err(e) => Err(e),
            }
        };
        let failure = match &outcome {
            Ok((r, _)) if r.status().is_success() => None,
            Ok((r, _)) => Some(Failure::Status(r.status().as_u16())),
            Err(e) if e.is_connect() => Some(Failure::Connect),
            Err(_) => Some(Failure::AfterSend),
        };
        if let (Some((method, path)), Some(started)) = (path, started) {
            tracing::debug!(
                operation = info.operation_id,
                %method,
                path,
                status = outcome.as_ref().ok().map(|(r, _)| r.status().as_u16()),
                error = outcome.as_ref().err().map(tracing::field::display),
                attempt = attempt_number,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "cometapi request"
            );
        }
        let Some(failure) = failure.filter(|f| shared.retry.should_retry(is_create, *f)) else { return outcome };
        let Some(retry) = shared.retry.take_retry(spent) else { return outcome };
        let retry_after = outcome.as_ref().ok().and_then(|(r, _)| {
            let value = r.headers().get(RETRY_AFTER)?.to_str().ok()?;
            parse_retry_after(value, SystemTime::now())
        });
        let pause = shared.retry.delay(retry, retry_after);
        tracing::debug!(operation = info.operation_id, ?failure, pause_ms = pause.as_millis() as u64, "retrying");
        tokio::time::sleep(pause).await;
        attempt_number += 1;
    }
}

/// Reads the body while the request still holds its slot in the request limit, so that a slot
/// is only given to the next request once this one's connection is free again, and bounds what
/// a response can make the client hold in memory: a body past the cap (4 MiB for a `2xx`,
/// 64 KiB for an error page, which is only read for a code and a message) is cut and the
/// connection dropped, so the rest is never read, however large. The response is handed on
/// with its body in memory; the generated client then decodes it as usual. A body that arrived
/// in one piece — every poll answer — is handed on without a copy.
async fn bounded(
    mut response: reqwest::Response,
    permit: tokio::sync::OwnedSemaphorePermit,
    wanted: Body,
) -> reqwest::Result<(reqwest::Response, Bytes)> {
    let cap = if response.status().is_success() { MAX_SUCCESS_BODY } else { MAX_ERROR_BODY };
    let (mut body, mut pieces, mut read) = (Bytes::new(), None::<BytesMut>, 0);
    while let Some(mut chunk) = response.chunk().await? {
        chunk.truncate(cap - read);
        read += chunk.len();
        match &mut pieces {
            None if body.is_empty() => body = chunk,
            None => {
                let mut joined = BytesMut::from(&body[..]);
                joined.extend_from_slice(&chunk);
                pieces = Some(joined);
            }
            Some(pieces) => pieces.extend_from_slice(&chunk),
        }
        if read == cap {
            break;
        }
    }
    drop(permit);
    let body = pieces.map_or(body, BytesMut::freeze);
    if wanted == Body::Beside {
        return Ok((response, body));
    }
    let mut rebuilt = http::Response::builder()
        .status(response.status())
        .version(response.version())
        .url(response.url().clone())
        .body(body)
        .expect("status and version come from a valid response");
    *rebuilt.headers_mut() = std::mem::take(response.headers_mut());
    rebuilt.headers_mut().remove(CONTENT_LENGTH);
    Ok((reqwest::Response::from(rebuilt), Bytes::new()))
}
