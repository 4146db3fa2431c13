//! One error type for everything the crate can fail at, a variant per failure plane.

use std::{fmt, path::PathBuf, time::Duration};

use crate::task::Task;

/// The longest piece of a response body kept in an error, in characters.
pub(crate) const BODY_SNIPPET_CHARS: usize = 512;

/// Everything that can go wrong, one variant per plane, each carrying what a caller needs to act.
///
/// ```
/// # use cometapi_runway::{Error, ImageToVideo};
/// let err = ImageToVideo::new("https://example.com/cat.jpg").seed(1_000_000_000).build().unwrap_err();
/// match err {
///     Error::InvalidInput { field, .. } => assert_eq!(field, "seed"),
///     other => panic!("unexpected {other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input or configuration broke a rule; nothing was sent.
    ///
    /// Shown as `invalid duration 5 for veo3.1: must be 4, 6 or 8`: the field, the value, the
    /// model whose rule it broke (for per-model rules), and the rule.
    #[error("invalid {field} {value}{}: {rule}", .model.as_deref().map(|m| format!(" for {m}")).unwrap_or_default())]
    InvalidInput {
        /// The field, as the API or the builder names it (`promptText`, `base_url`, ...).
        field: &'static str,
        /// The offending value, quoted and shortened for display (never a secret).
        value: String,
        /// The rule it broke.
        rule: String,
        /// The model whose own rule it broke; `None` for rules every request follows.
        model: Option<String>,
    },

    /// The service (or a proxy in front of it) answered with an error status.
    #[error("{}", api_message(*.status, .code.as_deref(), .message.as_deref(), .body))]
    Api {
        /// HTTP status.
        status: u16,
        /// Machine-readable code from the body (`task_not_exist`, `invalid_api_key`, ...).
        code: Option<String>,
        /// Human-readable message from the body.
        message: Option<String>,
        /// The start of the body, at most 512 characters.
        body: String,
        /// What `Retry-After` asked for, if anything.
        retry_after: Option<Duration>,
    },

    /// The request did not complete: connection refused or reset, DNS, TLS, or a timeout.
    #[error("transport error: {message}")]
    Transport {
        /// What happened, with the underlying cause.
        message: String,
        /// True when it was a timeout (connect, request or read).
        timeout: bool,
        /// The underlying error.
        #[source]
        source: Option<reqwest::Error>,
    },

    /// The service answered 2xx with a body this crate could not read.
    #[error("could not decode the response: {message}; body starts: {body}")]
    Decode {
        /// The decoder's complaint.
        message: String,
        /// The start of the body, at most 512 characters.
        body: String,
    },

    /// The task ended in `FAILED`.
    #[error("task {} failed: {}{}", .task.id, .task.failure.as_deref().unwrap_or("no reason given"),
        .task.failure_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    TaskFailed {
        /// The task as last seen, with `failure` and `failure_code`.
        task: Box<Task>,
    },

    /// The task ended in `CANCELLED`.
    #[error("task {} was cancelled", .task.id)]
    TaskCancelled {
        /// The task as last seen.
        task: Box<Task>,
    },

    /// The service kept answering `task_not_exist` past the grace period.
    #[error("task {id} not found: the service still answered task_not_exist after {waited:?}; check the id")]
    TaskNotFound {
        /// The id that was polled.
        id: String,
        /// How long the crate waited for the task to become visible.
        waited: Duration,
    },

    /// The overall wait timeout passed before the task was terminal.
    #[error("timed out after {waited:?} waiting for task {id}{}", last_seen(.last.as_deref()))]
    TimedOut {
        /// The id that was polled.
        id: String,
        /// How long the crate waited.
        waited: Duration,
        /// The last task seen, if any poll succeeded.
        last: Option<Box<Task>>,
    },

    /// A download could not complete; no partial file was left behind.
    #[error("download of {url} failed: {message}")]
    Download {
        /// The URL fetched (output URLs carry no secret).
        url: String,
        /// What went wrong.
        message: String,
    },

    /// A local file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The API error code, if the service sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => code.as_deref(),
            Error::TaskFailed { task } => task.failure_code.as_deref(),
            _ => None,
        }
    }

    /// True for the service's "this task does not exist (yet)" answer.
    pub fn is_task_not_exist(&self) -> bool {
        matches!(self, Error::Api { status, code: Some(code), .. }
            if code == "task_not_exist" && (*status == 200 || (400..500).contains(status)))
    }

    /// The HTTP status, when the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The task as last seen, for errors that have one.
    pub fn task(&self) -> Option<&Task> {
        match self {
            Error::TaskFailed { task } | Error::TaskCancelled { task } => Some(task),
            Error::TimedOut { last, .. } => last.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn invalid(field: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        Error::InvalidInput { field, value: shorten(&value.to_string(), 80), rule: rule.into(), model: None }
    }

    /// As [`Error::invalid`], for a rule of one model.
    pub(crate) fn invalid_for(
        model: &str,
        field: &'static str,
        value: impl fmt::Display,
        rule: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            field,
            value: shorten(&value.to_string(), 80),
            rule: rule.into(),
            model: Some(model.to_string()),
        }
    }

    pub(crate) fn transport(source: reqwest::Error) -> Self {
        let mut message = source.to_string();
        let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&source);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        Error::Transport { message, timeout: source.is_timeout(), source: Some(source) }
    }
}

/// Shortens text for display, on a character boundary, marking the cut.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

fn api_message(status: u16, code: Option<&str>, message: Option<&str>, body: &str) -> String {
    let mut out = format!("API error (HTTP {status})");
    match (code, message) {
        (Some(c), Some(m)) if c != m => out.push_str(&format!(": {c}: {m}")),
        (Some(c), _) => out.push_str(&format!(": {c}")),
        (None, Some(m)) => out.push_str(&format!(": {m}")),
        (None, None) if body.trim().is_empty() => out.push_str(": empty body"),
        (None, None) => out.push_str(&format!("; body starts: {body}")),
    }
    let hint = match status {
        401 | 403 => " (check the API key: COMETAPI_KEY or --api-key)",
        429 => " (rate limited: retry later)",
        500..=599 => " (server error: retry later)",
        _ => "",
    };
    out.push_str(hint);
    out
}

fn last_seen(task: Option<&Task>) -> String {
    match task {
        Some(t) => format!(" (last seen {})", t.status),
        None => " (no poll succeeded)".to_string(),
    }
}
