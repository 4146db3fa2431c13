//! When a failed request is tried again, and after how long.
//!
//! # Why a create call is retried so rarely
//!
//! A create call costs money, so it is retried only where the task was certainly not created:
//! the connection failed before the request was sent (refused, DNS, TLS, connect timeout:
//! [`reqwest::Error::is_connect`]), or the service answered `429` (rate limits are enforced
//! before a task exists). A `5xx`, a timeout, a reset or an unreadable `200` *after* the request
//! was sent may mean the task was created and only the answer was lost: the gateway forwards the
//! request upstream before it fails, and a timeout says nothing about how far the request got.
//! Retrying then would create, and bill, a second task — the failure the official SDKs have
//! when they retry `POST` on `5xx`. So it is not done unless the caller opts in with
//! [`RetryPolicy::retry_create_on_server_error`]. The caller gets a typed error instead and can
//! decide (the task, if it exists, shows up in the CometAPI dashboard).
//!
//! # Polls
//!
//! Polls are free to repeat and are retried on connect errors, timeouts, resets, 408, 429,
//! 500/502/503/504 and on a `200` whose body is not a task in either shape (a proxy's page, a
//! body cut short). Other `4xx` answers are final: retrying cannot fix them.
//!
//! # How long
//!
//! Exponential backoff with full jitter (a uniform pause between zero and
//! `base_delay * 2^retry`, capped at `max_delay`), so many clients that failed together do not
//! retry together. A `Retry-After` header, in seconds or as an HTTP date, replaces the backoff,
//! but never beyond `max_retry_after`: a server cannot park a client for an hour.
//! The number of retries is bounded, and requests in flight on one client are bounded by
//! [`ClientBuilder::max_concurrent_requests`](crate::ClientBuilder::max_concurrent_requests);
//! a request waiting out its pause holds no slot.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Exponential backoff with full jitter, a cap, and a bounded respect for `Retry-After`.
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .max_retries(5)
///     .base_delay(Duration::from_millis(200))
///     .max_delay(Duration::from_secs(5));
/// assert_eq!(policy.max_retries_value(), 5);
/// assert!(RetryPolicy::none().max_retries_value() == 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_retry_after: Duration,
    retry_create_on_server_error: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            retry_create_on_server_error: false,
        }
    }
}

/// What a failed attempt looked like, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection could not be made; nothing reached the server.
    Connect,
    /// A timeout, a reset, or a body cut short after the request was sent.
    AfterSend,
    /// A `2xx` answer whose body could not be what the call returns.
    Undecodable,
    /// The server answered with this status.
    Status(u16),
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy { max_retries: 0, ..RetryPolicy::default() }
    }

    /// Retries after the first attempt (default 3).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first backoff step (default 500 ms); each further step doubles, with full jitter.
    pub fn base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }

    /// The longest backoff step (default 10 s).
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }

    /// The longest `Retry-After` honoured (default 60 s); a longer one is cut to this.
    pub fn max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// Also retry a create call on 5xx and on timeouts after sending (default off).
    ///
    /// Off by default because the task may have been created before the error: a retry can
    /// create, and bill, a second task. Turn it on only if duplicate tasks are acceptable.
    pub fn retry_create_on_server_error(mut self, yes: bool) -> Self {
        self.retry_create_on_server_error = yes;
        self
    }

    /// The configured number of retries.
    pub fn max_retries_value(&self) -> u32 {
        self.max_retries
    }

    /// Whether a failed attempt should be tried again.
    pub(crate) fn should_retry(&self, is_create: bool, failure: Failure) -> bool {
        match failure {
            Failure::Connect => true,
            Failure::Status(429) => true,
            Failure::Status(408 | 500 | 502 | 503 | 504) | Failure::AfterSend => {
                !is_create || self.retry_create_on_server_error
            }
            // A readable-or-not 2xx on create means the task exists: never create another.
            Failure::Undecodable => !is_create,
            Failure::Status(_) => false,
        }
    }

    /// The pause before retry number `retry` (0-based), honouring `Retry-After` when given.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let ceiling = self.base_delay.saturating_mul(2u32.saturating_pow(retry.min(16))).min(self.max_delay);
        if ceiling.is_zero() {
            return ceiling;
        }
        rand::rng().random_range(Duration::ZERO..=ceiling)
    }
}

/// Reads `Retry-After`: delta seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

impl RetryPolicy {
    /// Takes one retry from the call's budget `spent` (shared by every request the call sends)
    /// and returns its 0-based number (for the backoff), or `None` once spent.
    pub(crate) fn take_retry(&self, spent: &mut u32) -> Option<u32> {
        if *spent >= self.max_retries {
            return None;
        }
        *spent += 1;
        Some(*spent - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn create_is_retried_only_where_no_task_can_exist() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(true, Failure::Connect));
        assert!(p.should_retry(true, Failure::Status(429)));
        for s in [500, 502, 503, 504, 408] {
            assert!(!p.should_retry(true, Failure::Status(s)), "{s}");
            assert!(p.should_retry(false, Failure::Status(s)), "{s}");
        }
        assert!(!p.should_retry(true, Failure::AfterSend));
        assert!(p.should_retry(false, Failure::AfterSend));
        assert!(!p.should_retry(false, Failure::Status(400)));
        assert!(p.should_retry(false, Failure::Undecodable));
        assert!(!p.should_retry(true, Failure::Undecodable));
        assert!(!RetryPolicy::default().retry_create_on_server_error(true).should_retry(true, Failure::Undecodable));
        let opt_in = RetryPolicy::default().retry_create_on_server_error(true);
        assert!(opt_in.should_retry(true, Failure::Status(503)));
    }

    #[test]
    fn backoff_is_jittered_under_a_doubling_cap() {
        let p = RetryPolicy::default().base_delay(Duration::from_millis(100)).max_delay(Duration::from_millis(350));
        for _ in 0..200 {
            assert!(p.delay(0, None) <= Duration::from_millis(100));
            assert!(p.delay(1, None) <= Duration::from_millis(200));
            assert!(p.delay(5, None) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn a_budget_is_spent_once() {
        let p = RetryPolicy::default().max_retries(2);
        let mut spent = 0;
        assert_eq!(
            (p.take_retry(&mut spent), p.take_retry(&mut spent), p.take_retry(&mut spent)),
            (Some(0), Some(1), None)
        );
        assert_eq!(RetryPolicy::none().take_retry(&mut 0), None);
    }

    #[test]
    fn retry_after_is_honoured_and_bounded() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(30));
        assert_eq!(p.delay(0, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(0, Some(Duration::from_secs(3600))), Duration::from_secs(30));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(12));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(12)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(12));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a server sends as `Retry-After`, and however many retries came before, the
        /// pause is bounded and reading the header never panics.
        #[test]
        fn every_pause_is_bounded(
            header in prop_oneof![
                "[ -~]{0,40}",
                any::<u64>().prop_map(|n| n.to_string()),
                any::<u32>().prop_map(|n| {
                    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(n) * 2))
                }),
            ],
            retry in any::<u32>(),
        ) {
            let policy = RetryPolicy::default();
            let pause = policy.delay(retry, parse_retry_after(&header, SystemTime::now()));
            prop_assert!(pause <= Duration::from_secs(60), "{header:?} -> {pause:?}");
        }
    }
}
