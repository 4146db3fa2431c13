//! A faithful local simulator of CometAPI's Runway routes (feature `mock`).
//!
//! [`MockServer`] is a real HTTP server on loopback, started in-process on a random port, that
//! behaves like the service described in the crate's API notes:
//!
//! - `POST /runwayml/v1/image_to_video` checks `Authorization: Bearer <key>` (401 with the
//!   gateway's OpenAI-style body `{"error":{"message","type","code":"invalid_api_key"}}`),
//!   requires `X-Runway-Version` as a `YYYY-MM-DD` date (400 `{"error":"..."}` naming the
//!   header) and a JSON `Content-Type` (400 `{"error":"..."}` otherwise), validates the body
//!   with the crate's own [`Catalogue`](crate::Catalogue) — the field rules for every model
//!   (images, `seed` 0..=999999999, `promptText` 1..=512 UTF-16 units, ...) and a known model's
//!   own rules (ratios, durations, keyframes, required and accepted fields) unless
//!   [`Scenario::check_models`] is off; 400 `{"error":"..."}` naming the field otherwise — and
//!   answers `{"id":"<uuid>"}`. Unknown models are accepted.
//! - `GET /runwayml/v1/tasks/{id}` checks the key (`X-Runway-Version` optional). An unknown id,
//!   and a task in the [`Scenario::invisible_for`] window after its creation (default 1 s; or,
//!   count-based, its first [`Scenario::not_found_polls`] polls), answer HTTP 400
//!   `{"code":"task_not_exist","message":"task_not_exist","data":null}`. Meanwhile the task is
//!   `PENDING` for [`Scenario::pending_for`] (after creation), `RUNNING` with `progress` rising
//!   from 0 to 1 over [`Scenario::running_for`], then ends as [`Scenario::outcome`] says. Answers
//!   come in Runway's plain shape, CometAPI's envelope (`QUEUED`/`IN_PROGRESS`/`SUCCESS`/`FAILURE`,
//!   `progress: "35%"`, Unix-second times, the Runway task in `data.data`), or alternating
//!   ([`ResponseShape`]).
//! - `GET /files/{id}.mp4` serves a small, real, playable MP4 (1 s, 160x90, H.264) for a
//!   succeeded task (404 before or otherwise), with `Content-Length` and single byte ranges.
//!   Like the CDN real outputs live on, it needs no key; requests are recorded, so tests can
//!   assert the key was *not* sent there.
//! - [`Fault`]s inject 429s, 5xx, garbage bodies, HTML error pages and slow answers.
//! - Every request is recorded ([`MockServer::requests`]).
//!
//! Timelines run on `tokio::time`, so they follow a paused test clock too.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cometapi_runway::Error> {
//! use cometapi_runway::{mock::MockServer, ImageToVideo};
//!
//! let server = MockServer::start().await;
//! let client = server.client().build()?;
//! let task = client.generate(&ImageToVideo::new("https://example.com/cat.jpg")).await?;
//! assert_eq!(task.output, vec![format!("{}/files/{}.mp4", server.base_url(), task.id)]);
//! assert_eq!(server.tasks_created(), 1);
//! # Ok(()) }
//! ```

mod routes;
mod scenario;
mod state;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use scenario::{Fault, Outcome, ResponseShape, Route, Scenario};
pub use state::RecordedRequest;

use crate::{ClientBuilder, PollPolicy, RetryPolicy, WaitOptions};
use routes::Shared;

/// The API key the simulator accepts unless told otherwise.
pub const DEFAULT_MOCK_KEY: &str = "mock-key";

/// The bytes of the MP4 the simulator serves as every succeeded task's output.
///
/// ```
/// let mp4 = cometapi_runway::mock::SAMPLE_MP4;
/// assert_eq!(&mp4[4..8], b"ftyp");
/// ```
pub const SAMPLE_MP4: &[u8] = routes::SAMPLE_MP4;

/// A running simulator. Stops when dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use cometapi_runway::mock::{MockServer, Outcome};
///
/// let server = MockServer::builder()
///     .running_for(Duration::from_millis(20))
///     .outcome(Outcome::Cancel)
///     .start()
///     .await;
/// assert!(server.base_url().starts_with("http://127.0.0.1:"));
/// # }
/// ```
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    api_key: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// Starts a simulator with the defaults: key `mock-key`, invisible (`task_not_exist`) for 1 s
    /// after creation, 30 ms pending, 100 ms running with progress, success, alternating shapes, no faults.
    ///
    /// # Panics
    /// If no loopback port can be bound (use [`MockServerBuilder::try_start`] to handle that).
    pub async fn start() -> MockServer {
        MockServer::builder().start().await
    }

    /// A builder to configure the key, port and [`Scenario`].
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// A [`ClientBuilder`] pointed at this server, with its key, fast polling (every 10 ms, 5 s
    /// of `task_not_exist` grace) and fast retries (5 ms base, 50 ms max).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), cometapi_runway::Error> {
    /// let server = cometapi_runway::mock::MockServer::start().await;
    /// let client = server.client().build()?;
    /// assert_eq!(client.base_url(), server.base_url());
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> ClientBuilder {
        crate::Client::builder()
            .api_key(self.api_key.clone())
            .base_url(self.base_url.clone())
            .wait_options(Self::wait_options())
            .retry_policy(Self::retry_policy())
    }

    /// The wait options [`MockServer::client`] uses: poll every 10 ms, 5 s of `task_not_exist`
    /// grace. A starting point for [`Client::wait_with`](crate::Client::wait_with):
    ///
    /// ```
    /// use cometapi_runway::mock::MockServer;
    /// let options = MockServer::wait_options().on_update(|task| println!("{}", task.status));
    /// # drop(options);
    /// ```
    pub fn wait_options() -> WaitOptions {
        WaitOptions::default()
            .poll_policy(PollPolicy::fixed(Duration::from_millis(10)))
            .not_found_grace(Duration::from_secs(5))
    }

    /// The retry policy [`MockServer::client`] uses: the default one with 5 ms base and 50 ms
    /// maximum backoff.
    pub fn retry_policy() -> RetryPolicy {
        RetryPolicy::default().base_delay(Duration::from_millis(5)).max_delay(Duration::from_millis(50))
    }

    /// The URL a task's output is served at (whether or not it has succeeded yet).
    pub fn output_url(&self, task_id: &str) -> String {
        routes::output_url(&self.base_url, task_id)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    /// The requests received on one route ([`Route::Api`] and [`Route::Any`] match several).
    pub fn requests_on(&self, route: Route) -> Vec<RecordedRequest> {
        self.lock().log.iter().filter(|r| r.route.is_some_and(|actual| route.matches(actual))).cloned().collect()
    }

    /// Forgets the recorded requests (tasks and faults are kept).
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// How many tasks were actually created (including those whose create answer a
    /// [`Fault::ServerError`] lost).
    pub fn tasks_created(&self) -> usize {
        self.lock().order.len()
    }

    /// The ids of the tasks created, in order.
    pub fn task_ids(&self) -> Vec<String> {
        self.lock().order.clone()
    }

    /// Adds a fault on its default route, from now on (see [`Fault`]).
    pub fn add_fault(&self, fault: Fault) {
        let route = fault.default_route();
        self.lock().add_fault(fault, route);
    }

    /// Adds a fault on the given route, from now on.
    pub fn add_fault_on(&self, route: Route, fault: Fault) {
        self.lock().add_fault(fault, route);
    }

    /// Replaces the scenario used for tasks created from now on (faults are not touched: see
    /// [`MockServer::add_fault`]).
    pub fn set_scenario(&self, scenario: Scenario) {
        self.lock().scenario = scenario;
    }

    /// Waits until the server stops (it only stops if its task panics): for a standalone
    /// simulator such as `cometapi-runway mock-server`.
    pub async fn run_forever(mut self) {
        let _ = (&mut self.task).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Configures a [`MockServer`]: key, address and [`Scenario`] (its setters are mirrored here).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
/// use cometapi_runway::mock::{Fault, MockServer, ResponseShape};
///
/// let server = MockServer::builder()
///     .api_key("sk-test")
///     .not_found_polls(3)
///     .shape(ResponseShape::Envelope)
///     .fault(Fault::RateLimit { times: 1, retry_after: Some(1) })
///     .try_start()
///     .await?;
/// assert_eq!(server.api_key(), "sk-test");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MockServerBuilder {
    api_key: String,
    addr: SocketAddr,
    scenario: Scenario,
}

impl Default for MockServerBuilder {
    fn default() -> Self {
        MockServerBuilder {
            api_key: DEFAULT_MOCK_KEY.to_string(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            scenario: Scenario::default(),
        }
    }
}

impl MockServerBuilder {
    /// The API key to accept (default `mock-key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Listen on this loopback port (default 0: a random free port).
    pub fn port(mut self, port: u16) -> Self {
        self.addr.set_port(port);
        self
    }

    /// Listen on this address (default `127.0.0.1:0`).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Replaces the whole scenario.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }

    /// See [`Scenario::check_models`].
    pub fn check_models(mut self, yes: bool) -> Self {
        self.scenario = self.scenario.check_models(yes);
        self
    }

    /// See [`Scenario::not_found_polls`].
    pub fn not_found_polls(mut self, n: u32) -> Self {
        self.scenario = self.scenario.not_found_polls(n);
        self
    }

    /// See [`Scenario::invisible_for`].
    pub fn invisible_for(mut self, d: Duration) -> Self {
        self.scenario = self.scenario.invisible_for(d);
        self
    }

    /// See [`Scenario::throttled_for`].
    pub fn throttled_for(mut self, d: Duration) -> Self {
        self.scenario = self.scenario.throttled_for(d);
        self
    }

    /// See [`Scenario::pending_for`].
    pub fn pending_for(mut self, d: Duration) -> Self {
        self.scenario = self.scenario.pending_for(d);
        self
    }

    /// See [`Scenario::running_for`].
    pub fn running_for(mut self, d: Duration) -> Self {
        self.scenario = self.scenario.running_for(d);
        self
    }

    /// See [`Scenario::report_progress`].
    pub fn report_progress(mut self, yes: bool) -> Self {
        self.scenario = self.scenario.report_progress(yes);
        self
    }

    /// See [`Scenario::outcome`].
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.scenario = self.scenario.outcome(outcome);
        self
    }

    /// See [`Scenario::shape`].
    pub fn shape(mut self, shape: ResponseShape) -> Self {
        self.scenario = self.scenario.shape(shape);
        self
    }

    /// See [`Scenario::fault`].
    pub fn fault(mut self, fault: Fault) -> Self {
        self.scenario = self.scenario.fault(fault);
        self
    }

    /// See [`Scenario::fault_on`].
    pub fn fault_on(mut self, route: Route, fault: Fault) -> Self {
        self.scenario = self.scenario.fault_on(route, fault);
        self
    }

    /// See [`Scenario::create_rate_limit`].
    pub fn create_rate_limit(mut self, per_second: f64, burst: u32) -> Self {
        self.scenario = self.scenario.create_rate_limit(per_second, burst);
        self
    }

    /// See [`Scenario::output_url_ttl`].
    pub fn output_url_ttl(mut self, d: Duration) -> Self {
        self.scenario = self.scenario.output_url_ttl(d);
        self
    }

    /// Starts the server.
    ///
    /// # Panics
    /// If the address cannot be bound (see [`MockServerBuilder::try_start`]).
    pub async fn start(self) -> MockServer {
        let addr = self.addr;
        self.try_start().await.unwrap_or_else(|e| panic!("mock server: cannot listen on {addr}: {e}"))
    }

    /// Starts the server, or says why the address cannot be bound.
    pub async fn try_start(self) -> std::io::Result<MockServer> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let host = match addr {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        let base_url = format!("http://{host}:{}", addr.port());
        let state: Shared =
            Arc::new(Mutex::new(state::State::new(self.api_key.clone(), base_url.clone(), self.scenario)));
        let app = routes::router(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("mock server stopped: {e}");
            }
        });
        Ok(MockServer { addr, base_url, api_key: self.api_key, state, task })
    }
}
