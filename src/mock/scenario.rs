//! What the simulator does with a task (timing, outcome, shape) and which faults it injects.

use std::time::Duration;

/// How a task created on the simulator behaves: how long it stays invisible, pending and
/// running, how it ends, which shape the poll route answers in, and which faults are injected.
///
/// Every task takes a copy of the scenario when it is created, so changing the server's faults
/// later (see [`MockServer::add_fault`](super::MockServer::add_fault)) never alters a task's
/// timeline.
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::mock::{Outcome, ResponseShape, Scenario};
///
/// assert_eq!(Scenario::default().invisible_for, Duration::from_secs(1));
/// let scenario = Scenario::default()
///     .not_found_polls(2) // count-based instead of the default 1 s window
///     .pending_for(Duration::from_millis(10))
///     .running_for(Duration::from_millis(50))
///     .outcome(Outcome::fail("SAFETY.INPUT.IMAGE", "The image was flagged"))
///     .shape(ResponseShape::Envelope);
/// assert_eq!(scenario.not_found_polls, 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Scenario {
    /// For this long after its creation a task is not visible yet: its polls answer HTTP 400
    /// `task_not_exist`, like the real route in the moments after a create (default 1 s). The
    /// task's timeline runs meanwhile (it may already be done when it becomes visible).
    pub invisible_for: Duration,
    /// The first this many polls of each task answer HTTP 400 `task_not_exist`, however late they
    /// come (default 0): the count-based alternative to [`Scenario::invisible_for`], for tests
    /// that want an exact number of such answers. When both are set, a poll is answered
    /// `task_not_exist` while either holds.
    pub not_found_polls: u32,
    /// How long a task stays `THROTTLED` right after creation, before `PENDING` (default 0).
    pub throttled_for: Duration,
    /// How long a task stays `PENDING` (after any throttling; default 30 ms).
    pub pending_for: Duration,
    /// How long a task stays `RUNNING`, its progress rising from 0 to 1 (default 100 ms).
    pub running_for: Duration,
    /// Whether `RUNNING` answers carry `progress` (default `true`).
    pub report_progress: bool,
    /// How the task ends (default [`Outcome::Succeed`]).
    pub outcome: Outcome,
    /// Which shape the poll route answers in (default [`ResponseShape::Alternating`]).
    pub shape: ResponseShape,
    /// Injected faults, in the order they are tried (default none).
    pub faults: Vec<(Fault, Route)>,
    /// Creates allowed per second, as a token bucket: `(rate, burst)`; a create over it answers
    /// `429` with `Retry-After` (whole seconds until a token is back) before any task exists
    /// (default none).
    pub create_rate_limit: Option<(f64, u32)>,
    /// How long an output URL stays valid after the poll that gave it; then the files route
    /// answers `403` for it, and a new poll gives a fresh URL (default: forever).
    pub output_url_ttl: Option<Duration>,
    /// Whether a create for a known model is refused when it breaks that model's rules from the
    /// crate's catalogue, as the service would (default `true`). Field rules apply either way;
    /// unknown models are always accepted.
    pub check_models: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            invisible_for: Duration::from_secs(1),
            not_found_polls: 0,
            throttled_for: Duration::ZERO,
            pending_for: Duration::from_millis(30),
            running_for: Duration::from_millis(100),
            report_progress: true,
            outcome: Outcome::Succeed,
            shape: ResponseShape::Alternating,
            faults: Vec::new(),
            create_rate_limit: None,
            output_url_ttl: None,
            check_models: true,
        }
    }
}

impl Scenario {
    /// Whether known models' own rules are checked on create (see [`Scenario::check_models`]).
    pub fn check_models(mut self, yes: bool) -> Self {
        self.check_models = yes;
        self
    }

    /// The first `n` polls of each task answer `task_not_exist`, and no time window applies
    /// (sets [`Scenario::invisible_for`] to zero): an exact count, whenever the polls come.
    pub fn not_found_polls(mut self, n: u32) -> Self {
        self.not_found_polls = n;
        self.invisible_for = Duration::ZERO;
        self
    }

    /// A task answers `task_not_exist` until `d` after its creation, and no poll count applies
    /// (sets [`Scenario::not_found_polls`] to zero).
    pub fn invisible_for(mut self, d: Duration) -> Self {
        self.invisible_for = d;
        self.not_found_polls = 0;
        self
    }

    /// Time spent `THROTTLED` before `PENDING`.
    pub fn throttled_for(mut self, d: Duration) -> Self {
        self.throttled_for = d;
        self
    }

    /// Time spent `PENDING`.
    pub fn pending_for(mut self, d: Duration) -> Self {
        self.pending_for = d;
        self
    }

    /// Time spent `RUNNING`.
    pub fn running_for(mut self, d: Duration) -> Self {
        self.running_for = d;
        self
    }

    /// Whether `RUNNING` answers carry `progress`.
    pub fn report_progress(mut self, yes: bool) -> Self {
        self.report_progress = yes;
        self
    }

    /// How tasks end.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Which shape the poll route answers in.
    pub fn shape(mut self, shape: ResponseShape) -> Self {
        self.shape = shape;
        self
    }

    /// Adds a fault on its default route (see [`Fault::default_route`]).
    pub fn fault(mut self, fault: Fault) -> Self {
        let route = fault.default_route();
        self.faults.push((fault, route));
        self
    }

    /// Adds a fault on the given route, overriding its default.
    pub fn fault_on(mut self, route: Route, fault: Fault) -> Self {
        self.faults.push((fault, route));
        self
    }

    /// At most `per_second` creates a second, with bursts of up to `burst` (at least 1).
    pub fn create_rate_limit(mut self, per_second: f64, burst: u32) -> Self {
        self.create_rate_limit = Some((per_second, burst.max(1)));
        self
    }

    /// Output URLs expire this long after the poll that gave them.
    pub fn output_url_ttl(mut self, d: Duration) -> Self {
        self.output_url_ttl = Some(d);
        self
    }
}

/// How a task ends once its `RUNNING` phase is over.
///
/// ```
/// use cometapi_runway::mock::Outcome;
/// let failed = Outcome::fail("SAFETY.INPUT.IMAGE", "The input image was flagged");
/// assert!(matches!(failed, Outcome::Fail { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Outcome {
    /// `SUCCEEDED`, with `output: ["{base_url}/files/{id}.mp4"]` (a real, playable MP4).
    #[default]
    Succeed,
    /// `FAILED`, with `failure` (human text) and `failureCode` (dot-separated).
    Fail {
        /// `failureCode`, e.g. `SAFETY.INPUT.IMAGE`.
        code: String,
        /// `failure`, the human-readable text.
        message: String,
    },
    /// `CANCELLED`.
    Cancel,
    /// Never ends: stays `RUNNING`, its progress creeping towards (never reaching) 1.
    NeverFinish,
}

impl Outcome {
    /// `FAILED` with this failure code and text.
    pub fn fail(code: impl Into<String>, message: impl Into<String>) -> Self {
        Outcome::Fail { code: code.into(), message: message.into() }
    }
}

/// Which shape the poll route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResponseShape {
    /// Runway's own task object: `{"id", "status", "createdAt", "progress", "output", ...}`.
    Plain,
    /// CometAPI's envelope: `{"code":"success","message":"","data":{"task_id", "status":
    /// "IN_PROGRESS", "progress":"35%", ..., "data": <the Runway task>}}`.
    Envelope,
    /// Plain on a task's 1st, 3rd, ... visible poll, envelope on the 2nd, 4th, ... (the real
    /// route mixes both for the same task).
    #[default]
    Alternating,
}

/// A route of the simulator, to aim a fault at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /runwayml/v1/image_to_video`.
    Create,
    /// `GET /runwayml/v1/tasks/{id}`.
    Poll,
    /// `GET /files/{id}.mp4` (the output "CDN").
    Download,
    /// Create and poll (the gateway's routes, not the CDN).
    Api,
    /// Every route, the download included.
    Any,
}

impl Route {
    /// Whether a fault aimed at `self` applies to a request on `actual`.
    pub fn matches(self, actual: Route) -> bool {
        match self {
            Route::Any => true,
            Route::Api => matches!(actual, Route::Create | Route::Poll),
            other => other == actual,
        }
    }
}

/// A fault the simulator injects on the first `times` requests its route receives.
///
/// Faults are tried in the order they were added; a request gets at most one answering fault
/// (the first one that still has `times` left), plus any [`Fault::Slow`] delay. Requests
/// answered by a fault never reach the task: they do not count as polls (for
/// [`Scenario::not_found_polls`] or the alternating shape); the [`Scenario::invisible_for`]
/// window runs on regardless.
///
/// Default routes ([`Fault::default_route`]), overridable with [`Scenario::fault_on`]:
///
/// | fault | default route | answer |
/// |---|---|---|
/// | [`RateLimit`](Fault::RateLimit) | [`Route::Api`] | 429, OpenAI-style body, `Retry-After` if set |
/// | [`ServerError`](Fault::ServerError) | its `on` field | `status`, gateway body `{"code":"upstream_error",...}` |
/// | [`GarbageBody`](Fault::GarbageBody) | [`Route::Poll`] | 200 with a body that is not JSON |
/// | [`HtmlErrorPage`](Fault::HtmlErrorPage) | [`Route::Poll`] | `status`, `text/html` page from a proxy |
/// | [`Slow`](Fault::Slow) | [`Route::Api`] | the normal answer (or another fault's), `delay` late |
///
/// Faults aimed at [`Route::Api`] or [`Route::Any`] hit the create call too: a client's first
/// request is its create. The defaults keep the faults a client is expected to ride out on the
/// routes where it can: polls are free to repeat, a create is not.
///
/// **A `ServerError` (or `GarbageBody`) on [`Route::Create`] is answered after the task was
/// created**: the task exists and runs, only the answer with its id is lost. That is the case
/// where a client must not blindly retry the create (it would pay for a second task);
/// [`MockServer::tasks_created`](super::MockServer::tasks_created) counts it. A create that
/// fails validation gets its 400 and does not use such a fault up. A `RateLimit` or
/// `HtmlErrorPage` on create answers before anything is created, like the gateway's rate
/// limiter or a proxy in front would. A `Slow` create is handled at once and answered late:
/// the task exists even if the client gave up waiting.
///
/// Authentication comes first: a request with a missing or wrong key gets its 401 and uses no
/// fault up.
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::mock::{Fault, Route, Scenario};
/// let scenario = Scenario::default()
///     .fault(Fault::RateLimit { times: 1, retry_after: Some(1) })
///     .fault(Fault::ServerError { status: 502, times: 1, on: Route::Create })
///     .fault_on(Route::Download, Fault::Slow { delay: Duration::from_millis(20), times: 1 });
/// assert_eq!(scenario.faults.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// 429 with `{"error":{"message":..., "type":"rate_limit_error", "code":"rate_limit_exceeded"}}`
    /// and, when set, `Retry-After: <seconds>`.
    RateLimit {
        /// How many requests get it.
        times: u32,
        /// `Retry-After` in seconds, if any.
        retry_after: Option<u64>,
    },
    /// A 5xx (or any status) with a gateway body `{"code":"upstream_error","message":...,"data":null}`.
    ServerError {
        /// The HTTP status, e.g. 500, 502, 503.
        status: u16,
        /// How many requests get it.
        times: u32,
        /// Which route it applies to.
        on: Route,
    },
    /// 200 with `application/json` content type and a body that is not JSON.
    GarbageBody {
        /// How many requests get it.
        times: u32,
    },
    /// An HTML error page (`text/html`) such as a proxy or CDN in front would send.
    HtmlErrorPage {
        /// The HTTP status, e.g. 502.
        status: u16,
        /// How many requests get it.
        times: u32,
    },
    /// Waits `delay` before answering.
    Slow {
        /// How long to wait.
        delay: Duration,
        /// How many requests get it.
        times: u32,
    },
}

impl Fault {
    /// The route this fault applies to unless given one with [`Scenario::fault_on`].
    pub fn default_route(&self) -> Route {
        match self {
            Fault::RateLimit { .. } => Route::Api,
            Fault::ServerError { on, .. } => *on,
            Fault::GarbageBody { .. } => Route::Poll,
            Fault::HtmlErrorPage { .. } => Route::Poll,
            Fault::Slow { .. } => Route::Api,
        }
    }

    /// How many requests it applies to.
    pub fn times(&self) -> u32 {
        match self {
            Fault::RateLimit { times, .. }
            | Fault::ServerError { times, .. }
            | Fault::GarbageBody { times }
            | Fault::HtmlErrorPage { times, .. }
            | Fault::Slow { times, .. } => *times,
        }
    }
}
