//! The simulator's memory: tasks, remaining faults and the request log.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method};
use tokio::time::Instant;

use super::scenario::{Fault, Outcome, ResponseShape, Route, Scenario};

/// One request the simulator received, recorded before it was answered (refused and faulted
/// requests included).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cometapi_runway::Error> {
/// use cometapi_runway::{mock::{MockServer, Route}, ImageToVideo};
///
/// let server = MockServer::start().await;
/// let client = server.client().build()?;
/// let task = client.generate(&ImageToVideo::new("https://example.com/cat.jpg")).await?;
/// let path = std::env::temp_dir().join(format!("{}.mp4", task.id));
/// client.download(&task.output[0], &path).await?;
/// # std::fs::remove_file(&path).unwrap();
///
/// let create = &server.requests_on(Route::Create)[0];
/// assert_eq!(create.header("x-runway-version"), Some("2024-11-06"));
/// assert_eq!(create.body_json().unwrap()["promptImage"], "https://example.com/cat.jpg");
/// // The key never travels to the CDN.
/// assert!(server.requests_on(Route::Download).iter().all(|r| r.header("authorization").is_none()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    /// All headers as received.
    pub headers: HeaderMap,
    /// The body as received.
    pub body: Bytes,
    /// Which simulator route it hit (`None` for an unknown path).
    pub route: Option<Route>,
}

impl RecordedRequest {
    /// A header's value as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A task as the simulator keeps it.
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    pub id: String,
    pub created: Instant,
    pub created_wall: SystemTime,
    /// Polls that reached this task (faulted ones excluded).
    pub polls: u32,
    /// Polls answered with the task (not `task_not_exist`): the alternating shape counts these.
    pub visible_polls: u32,
    pub invisible_for: Duration,
    pub not_found_polls: u32,
    pub throttled_for: Duration,
    pub pending_for: Duration,
    pub running_for: Duration,
    pub report_progress: bool,
    pub outcome: Outcome,
    pub shape: ResponseShape,
    pub output_url_ttl: Option<Duration>,
}

/// Where a task is on its timeline at some instant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phase {
    Throttled,
    Pending,
    /// Progress 0..1; `started` is when RUNNING began.
    Running {
        progress: f64,
        started: Instant,
    },
    /// The outcome happened at `started + running_for`.
    Done {
        started: Instant,
        finished: Instant,
    },
}

impl TaskRecord {
    /// Counts a poll that reached the task and says whether it sees the task (`false`: the
    /// answer is `task_not_exist`, by poll count or by the time since creation).
    pub fn poll_at(&mut self, now: Instant) -> bool {
        self.polls += 1;
        let hidden =
            self.polls <= self.not_found_polls || now.saturating_duration_since(self.created) < self.invisible_for;
        if !hidden {
            self.visible_polls += 1;
        }
        !hidden
    }

    pub fn phase_at(&self, now: Instant) -> Phase {
        let elapsed = now.saturating_duration_since(self.created);
        if elapsed < self.throttled_for {
            return Phase::Throttled;
        }
        let pending_end = self.throttled_for + self.pending_for;
        if elapsed < pending_end {
            return Phase::Pending;
        }
        let started = self.created + pending_end;
        let run = elapsed - pending_end;
        if matches!(self.outcome, Outcome::NeverFinish) {
            // Creeps towards 1 without reaching it: 0.99 at running_for, then slower.
            let total = self.running_for.as_secs_f64().max(1e-3);
            let x = run.as_secs_f64() / total;
            let progress = if x <= 1.0 { 0.99 * x } else { 1.0 - 0.01 / x };
            return Phase::Running { progress: progress.min(0.999), started };
        }
        if run < self.running_for {
            let progress = run.as_secs_f64() / self.running_for.as_secs_f64().max(1e-9);
            return Phase::Running { progress: progress.clamp(0.0, 1.0), started };
        }
        Phase::Done { started, finished: started + self.running_for }
    }
}

/// A fault with how many uses it has left.
#[derive(Debug, Clone)]
pub(crate) struct ArmedFault {
    pub fault: Fault,
    pub route: Route,
    pub left: u32,
}

/// Everything behind the server's mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub api_key: String,
    pub base_url: String,
    pub scenario: Scenario,
    pub faults: Vec<ArmedFault>,
    pub tasks: HashMap<String, TaskRecord>,
    /// Task ids in creation order.
    pub order: Vec<String>,
    pub log: Vec<RecordedRequest>,
    /// The create rate limit's bucket: tokens left and when it was last filled.
    pub create_tokens: Option<(f64, Instant)>,
}

/// What a request gets from the fault table.
#[derive(Debug, Default)]
pub(crate) struct FaultPick {
    pub delay: Option<Duration>,
    pub answer: Option<Fault>,
}

impl State {
    pub fn new(api_key: String, base_url: String, scenario: Scenario) -> Self {
        let faults = scenario
            .faults
            .iter()
            .map(|(fault, route)| ArmedFault { fault: fault.clone(), route: *route, left: fault.times() })
            .collect();
        State {
            api_key,
            base_url,
            scenario,
            faults,
            tasks: HashMap::new(),
            order: Vec::new(),
            log: Vec::new(),
            create_tokens: None,
        }
    }

    pub fn add_fault(&mut self, fault: Fault, route: Route) {
        let left = fault.times();
        self.faults.push(ArmedFault { fault, route, left });
    }

    /// Takes (uses up) the faults that apply to a request on `route`: the first `Slow` (if
    /// `allow_slow`) and the first answering fault that `answering` accepts (the create route
    /// takes a server error only after the task exists).
    pub fn take_faults(&mut self, route: Route, allow_slow: bool, answering: impl Fn(&Fault) -> bool) -> FaultPick {
        let mut pick = FaultPick::default();
        for armed in self.faults.iter_mut().filter(|f| f.left > 0 && f.route.matches(route)) {
            match &armed.fault {
                Fault::Slow { delay, .. } => {
                    if allow_slow && pick.delay.is_none() {
                        pick.delay = Some(*delay);
                        armed.left -= 1;
                    }
                }
                other => {
                    if pick.answer.is_none() && answering(other) {
                        pick.answer = Some(other.clone());
                        armed.left -= 1;
                    }
                }
            }
        }
        pick
    }

    /// Takes a token for a create under [`Scenario::create_rate_limit`]; `Err(seconds)` is the
    /// `Retry-After` to answer when none is left.
    pub fn take_create_token(&mut self) -> Result<(), u64> {
        let Some((rate, burst)) = self.scenario.create_rate_limit else { return Ok(()) };
        let now = Instant::now();
        let (tokens, since) = self.create_tokens.unwrap_or((f64::from(burst), now));
        let rate = rate.max(1e-6);
        let tokens = (tokens + now.saturating_duration_since(since).as_secs_f64() * rate).min(f64::from(burst));
        if tokens >= 1.0 {
            self.create_tokens = Some((tokens - 1.0, now));
            return Ok(());
        }
        self.create_tokens = Some((tokens, now));
        Err((((1.0 - tokens) / rate).ceil() as u64).max(1))
    }

    /// Creates a task from the current scenario and returns its id.
    pub fn create_task(&mut self) -> String {
        let id = new_task_id();
        let s = &self.scenario;
        let record = TaskRecord {
            id: id.clone(),
            created: Instant::now(),
            created_wall: SystemTime::now(),
            polls: 0,
            visible_polls: 0,
            invisible_for: s.invisible_for,
            not_found_polls: s.not_found_polls,
            throttled_for: s.throttled_for,
            pending_for: s.pending_for,
            running_for: s.running_for,
            report_progress: s.report_progress,
            outcome: s.outcome.clone(),
            shape: s.shape,
            output_url_ttl: s.output_url_ttl,
        };
        self.tasks.insert(id.clone(), record);
        self.order.push(id.clone());
        id
    }
}

/// A random UUID v4 in its usual text form.
pub(crate) fn new_task_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
