//! Waiting for a task to end: polling on a schedule, riding out `task_not_exist` and passing
//! faults, with progress observable on the way. Dropping the future or stream stops all polling.

use std::{fmt, sync::Arc, time::Duration};

use futures_core::Stream;
use tokio::time::Instant;

use crate::{
    error::Error,
    poll::{PollPolicy, PollState},
    request::ImageToVideo,
    task::{Task, TaskStatus},
    Client,
};

/// Called with every task seen while waiting.
pub type UpdateCallback = Arc<dyn Fn(&Task) + Send + Sync>;

/// How [`Client::wait`] waits.
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::{PollPolicy, WaitOptions};
/// let options = WaitOptions::default()
///     .timeout(Duration::from_secs(120))
///     .not_found_grace(Duration::from_secs(10))
///     .poll_policy(PollPolicy::default())
///     .on_update(|task| eprintln!("{} {:?}", task.status, task.progress));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct WaitOptions {
    timeout: Duration,
    not_found_grace: Duration,
    max_poll_errors: u32,
    poll: PollPolicy,
    on_update: Option<UpdateCallback>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(600),
            not_found_grace: Duration::from_secs(30),
            max_poll_errors: 5,
            poll: PollPolicy::default(),
            on_update: None,
        }
    }
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("timeout", &self.timeout)
            .field("not_found_grace", &self.not_found_grace)
            .field("max_poll_errors", &self.max_poll_errors)
            .field("poll", &self.poll)
            .field("on_update", &self.on_update.as_ref().map(|_| "Fn(&Task)"))
            .finish()
    }
}

impl WaitOptions {
    /// Give up after this long and return [`Error::TimedOut`] with the last task seen
    /// (default 10 minutes). When the next poll would come later than that, the task is polled
    /// once more at the deadline, so a task that finished meanwhile is returned, not timed out;
    /// that poll may answer for up to a quarter of the timeout (at most 10 s) past it.
    /// `Duration::MAX` means no timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// How long `task_not_exist` means "not visible yet" before it becomes
    /// [`Error::TaskNotFound`] (default 30 s).
    pub fn not_found_grace(mut self, d: Duration) -> Self {
        self.not_found_grace = d;
        self
    }

    /// Consecutive failed polls (after the client's own retries) tolerated before the error is
    /// returned (default 5). Only transient errors count: transport, undecodable body, 408/429/5xx.
    pub fn max_poll_errors(mut self, n: u32) -> Self {
        self.max_poll_errors = n;
        self
    }

    /// The poll schedule (default: ETA-aware, see [`PollPolicy`]).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// Call `f` with every task seen while waiting.
    pub fn on_update(mut self, f: impl Fn(&Task) + Send + Sync + 'static) -> Self {
        self.on_update = Some(Arc::new(f));
        self
    }
}

impl Client {
    /// Waits until the task is terminal, with the client's default [`WaitOptions`].
    ///
    /// Success returns the task; `FAILED` and `CANCELLED` return [`Error::TaskFailed`] and
    /// [`Error::TaskCancelled`]. `PENDING`, `THROTTLED`, `RUNNING` and unknown statuses keep waiting.
    pub async fn wait(&self, id: &str) -> Result<Task, Error> {
        self.wait_with(id, &self.wait.clone()).await
    }

    /// Waits until the task is terminal, with these options.
    pub async fn wait_with(&self, id: &str, options: &WaitOptions) -> Result<Task, Error> {
        let mut waiter = Waiter::new(self.clone(), id, options.clone());
        loop {
            match waiter.next().await {
                Some(Ok(task)) if task.status == TaskStatus::Succeeded => return Ok(task),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => unreachable!("the waiter ends with success or an error"),
            }
        }
    }

    /// Every task seen while waiting, as a stream that ends after the terminal one (or an error).
    ///
    /// ```no_run
    /// # async fn run(client: cometapi_runway::Client) {
    /// use futures_util::StreamExt;
    /// let mut updates = std::pin::pin!(client.updates("task-id", Default::default()));
    /// while let Some(update) = updates.next().await {
    ///     match update {
    ///         Ok(task) => println!("{} {:?}", task.status, task.progress),
    ///         Err(e) => eprintln!("{e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn updates(&self, id: &str, options: WaitOptions) -> impl Stream<Item = Result<Task, Error>> + Send + 'static {
        let waiter = Waiter::new(self.clone(), id, options);
        futures_util::stream::unfold(waiter, |mut w| async move { w.next().await.map(|item| (item, w)) })
    }

    /// Creates the task and waits for it: the common case in one call.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), cometapi_runway::Error> {
    /// use cometapi_runway::{Client, ImageToVideo};
    /// let client = Client::from_env()?;
    /// let task = client.generate(&ImageToVideo::new("https://example.com/cat.jpg").prompt_text("the cat yawns")).await?;
    /// println!("{}", task.output[0]);
    /// # Ok(()) }
    /// ```
    pub async fn generate(&self, request: &ImageToVideo) -> Result<Task, Error> {
        let id = self.create(request).await?;
        self.wait(&id).await
    }

    /// [`Client::generate`] with explicit wait options.
    pub async fn generate_with(&self, request: &ImageToVideo, options: &WaitOptions) -> Result<Task, Error> {
        let id = self.create(request).await?;
        self.wait_with(&id, options).await
    }
}

/// The polling state machine behind `wait` and `updates`.
struct Waiter {
    client: Client,
    id: String,
    options: WaitOptions,
    started: Instant,
    state: PollState,
    not_found_since: Option<Instant>,
    errors: u32,
    last: Option<Task>,
    /// The poll at (or past) the deadline was made: the next step times out.
    looked_at_deadline: bool,
    /// When the task started running and finished (seconds since waiting began), once it did.
    finished: Option<(Option<f64>, f64)>,
    done: bool,
}

impl Waiter {
    fn new(client: Client, id: &str, options: WaitOptions) -> Self {
        let state = PollState::expecting(client.learning.expected(id));
        Waiter {
            client,
            id: id.to_string(),
            options,
            started: Instant::now(),
            state,
            not_found_since: None,
            errors: 0,
            last: None,
            looked_at_deadline: false,
            finished: None,
            done: false,
        }
    }

    /// The next task seen, or the error that ends the wait; `None` once finished.
    async fn next(&mut self) -> Option<Result<Task, Error>> {
        if self.done {
            return None;
        }
        let item = self.step().await;
        self.done = !matches!(&item, Ok(task) if !task.is_terminal());
        if self.done {
            let learned = self.finished.take().filter(|_| matches!(&item, Ok(t) if t.status == TaskStatus::Succeeded));
            self.client.learning.ended(&self.id, learned);
        }
        Some(item)
    }

    async fn step(&mut self) -> Result<Task, Error> {
        // `None`: a timeout past any clock (`Duration::MAX`, the "no timeout" idiom).
        let deadline = self.started.checked_add(self.options.timeout);
        loop {
            if self.looked_at_deadline {
                return Err(self.timed_out());
            }
            let pause = self.options.poll.next_delay(&self.state);
            let (wake, last) = next_poll(Instant::now(), pause, deadline);
            tokio::time::sleep_until(wake).await;
            self.looked_at_deadline = last;
            // A poll under way when the deadline passes (the last look included) may still answer
            // for a short while past it.
            let grace = (self.options.timeout / 4).min(LAST_LOOK);
            let bound = deadline.and_then(|d| d.checked_add(grace));
            let polled = match bound {
                Some(bound) => tokio::time::timeout_at(bound, self.client.get_task(&self.id)).await,
                None => Ok(self.client.get_task(&self.id).await),
            };
            let Ok(polled) = polled else { return Err(self.timed_out()) };
            let elapsed = self.started.elapsed();
            self.looked_at_deadline |= deadline.is_some_and(|d| Instant::now() >= d);
            match polled {
                Ok(task) => {
                    match task.status {
                        TaskStatus::Pending | TaskStatus::Throttled => self.state.record_pending(elapsed),
                        TaskStatus::Running => self.state.record_running(elapsed, task.progress),
                        TaskStatus::Succeeded => {
                            self.finished = Some((self.state.started(), self.state.finished(elapsed)));
                            self.state.record(elapsed, None);
                        }
                        _ => self.state.record(elapsed, None),
                    }
                    self.not_found_since = None;
                    self.errors = 0;
                    if let Some(f) = &self.options.on_update {
                        f(&task);
                    }
                    self.last = Some(task.clone());
                    return match task.status {
                        TaskStatus::Failed => Err(Error::TaskFailed { task: Box::new(task) }),
                        TaskStatus::Cancelled => Err(Error::TaskCancelled { task: Box::new(task) }),
                        _ => Ok(task),
                    };
                }
                Err(e) if e.is_task_not_exist() => {
                    self.state.record_not_visible(elapsed);
                    let since = *self.not_found_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.options.not_found_grace {
                        return Err(Error::TaskNotFound { id: self.id.clone(), waited: since.elapsed() });
                    }
                    tracing::debug!(task_id = %self.id, "task not visible yet");
                }
                Err(e) if is_transient(&e) && self.errors < self.options.max_poll_errors => {
                    self.state.record(elapsed, None);
                    self.errors += 1;
                    tracing::warn!(task_id = %self.id, error = %e, "poll failed; polling again");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn timed_out(&self) -> Error {
        Error::TimedOut { id: self.id.clone(), waited: self.started.elapsed(), last: self.last.clone().map(Box::new) }
    }
}

/// How long past the deadline the poll made at it (or one under way when it passes) may take to
/// answer, at most: a quarter of the timeout, up to this. So a wait never reports `TimedOut` for
/// a task that had already finished when the deadline came, and ends soon after its timeout
/// even against a server that never answers.
const LAST_LOOK: Duration = Duration::from_secs(10);

/// When the next poll is made, and whether it is the last: a pause that would end at or past
/// the deadline is cut short to poll at the deadline itself. Saturating: no pause or deadline,
/// however far, overflows the clock.
fn next_poll(now: Instant, pause: Duration, deadline: Option<Instant>) -> (Instant, bool) {
    let wake = now.checked_add(pause);
    match (wake, deadline) {
        (Some(wake), Some(deadline)) if wake < deadline => (wake, false),
        (_, Some(deadline)) => (deadline.max(now), true),
        // No deadline: a pause past any clock waits about as long as tokio can.
        (wake, None) => (wake.or_else(|| now.checked_add(FAR_FUTURE)).unwrap_or(now), false),
    }
}

/// Longer than any wait worth having (about 30 years), short enough for every clock.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

fn is_transient(e: &Error) -> bool {
    match e {
        Error::Transport { .. } | Error::Decode { .. } => true,
        Error::Api { status, .. } => matches!(status, 408 | 429 | 500..=599),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_past_the_deadline_polls_at_the_deadline_as_the_last_look() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(10);
        assert_eq!(next_poll(now, Duration::from_secs(4), Some(deadline)), (now + Duration::from_secs(4), false));
        assert_eq!(next_poll(now, Duration::from_secs(10), Some(deadline)), (deadline, true));
        assert_eq!(next_poll(now, Duration::from_secs(60), Some(deadline)), (deadline, true));
        assert_eq!(next_poll(now, Duration::MAX, Some(deadline)), (deadline, true));
        // Already past it (a slow poll): look once more, now.
        let later = deadline + Duration::from_secs(3);
        assert_eq!(next_poll(later, Duration::from_secs(1), Some(deadline)), (later, true));
    }

    #[test]
    fn without_a_deadline_no_pause_overflows_the_clock() {
        let now = Instant::now();
        assert_eq!(next_poll(now, Duration::from_secs(4), None), (now + Duration::from_secs(4), false));
        let (wake, last) = next_poll(now, Duration::MAX, None);
        assert!(wake >= now + FAR_FUTURE && !last);
    }

    proptest::proptest! {
        #[test]
        fn any_pause_and_timeout_give_a_time_not_a_panic(
            pause_secs in proptest::num::u64::ANY,
            pause_nanos in 0u32..1_000_000_000,
            timeout_secs in proptest::num::u64::ANY,
            timeout_nanos in 0u32..1_000_000_000,
        ) {
            let now = Instant::now();
            let (pause, timeout) = (Duration::new(pause_secs, pause_nanos), Duration::new(timeout_secs, timeout_nanos));
            let deadline = now.checked_add(timeout);
            let (wake, last) = next_poll(now, pause, deadline);
            proptest::prop_assert!(wake >= now);
            if let Some(deadline) = deadline {
                proptest::prop_assert!(wake <= deadline);
                proptest::prop_assert_eq!(last, now.checked_add(pause).is_none_or(|w| w >= deadline));
            }
        }
    }
}
