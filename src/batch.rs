//! Many requests to many videos: creates paced to the service's rate limit, waits and
//! downloads overlapping, every paid step written to a [journal](crate::journal) first so a
//! rerun after a crash pays for nothing twice.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::{sync::Notify, time::Instant};

use crate::{
    download::DownloadOptions,
    error::Error,
    journal::{stable_hash, Entry, Journal},
    request::{ImageToVideo, SEED_MAX},
    task::Task,
    wait::WaitOptions,
    Client,
};

/// How long creates pause after a `429` that named no `Retry-After`.
const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// A create refused by rate limiting is tried again; this many times at most per item.
const MAX_THROTTLED_CREATES: u32 = 1000;

/// One request of a batch, and where its video goes.
///
/// ```
/// use cometapi_runway::{BatchItem, ImageToVideo};
/// let item = BatchItem::new(ImageToVideo::new("https://example.com/cat.jpg"), "out/cat.mp4");
/// assert_eq!(item.output().to_str(), Some("out/cat.mp4"));
/// ```
#[derive(Debug, Clone)]
pub struct BatchItem {
    request: ImageToVideo,
    output: PathBuf,
    /// Set when the file is named after the task: `output` is then the folder.
    name_prefix: Option<String>,
    key: Option<String>,
}

impl BatchItem {
    /// The request, and the file its video is saved to.
    pub fn new(request: ImageToVideo, output: impl Into<PathBuf>) -> BatchItem {
        BatchItem { request, output: output.into(), name_prefix: None, key: None }
    }

    /// The request, its video saved in `dir` under a name made of `prefix` and the task id
    /// (see [`task_file_name`]), known once the task exists.
    ///
    /// ```
    /// use cometapi_runway::{BatchItem, ImageToVideo};
    /// let item = BatchItem::named_by_task(ImageToVideo::new("https://example.com/cat.jpg"), "out", "0001-");
    /// assert_eq!(item.output_for("3d95/7031").to_str(), Some("out/0001-3d95_7031.mp4"));
    /// ```
    pub fn named_by_task(request: ImageToVideo, dir: impl Into<PathBuf>, prefix: impl Into<String>) -> BatchItem {
        BatchItem { request, output: dir.into(), name_prefix: Some(prefix.into()), key: None }
    }

    /// Where the video of task `task_id` goes.
    pub fn output_for(&self, task_id: &str) -> PathBuf {
        match &self.name_prefix {
            Some(prefix) => self.output.join(format!("{prefix}{}", task_file_name(task_id))),
            None => self.output.clone(),
        }
    }

    /// What identifies the item in the journal, hashed (default: the request and the output
    /// path). Give the input line's content, say, so that editing a line makes a new item and
    /// moving it does not.
    pub fn key(mut self, identity: impl AsRef<str>) -> BatchItem {
        self.key = Some(stable_hash(identity.as_ref().as_bytes()));
        self
    }

    /// Where the video is saved (for [`BatchItem::named_by_task`], the folder).
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// The request.
    pub fn request(&self) -> &ImageToVideo {
        &self.request
    }

    fn default_key(&self) -> String {
        let body = match self.request.build() {
            Ok(body) => serde_json::to_string(&body).unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        let prefix = self.name_prefix.as_deref().unwrap_or_default();
        stable_hash(format!("{body}\n{}\n{prefix}", self.output.display()).as_bytes())
    }
}

/// A file name for task `id`'s video: `<id>.mp4` with every character other than ASCII letters,
/// digits, `-`, `_` and `.` replaced by `_`, no leading dot, at most 100 characters before the
/// extension — whatever the server sent as an id.
///
/// ```
/// assert_eq!(cometapi_runway::task_file_name("3d957031-aa"), "3d957031-aa.mp4");
/// assert_eq!(cometapi_runway::task_file_name("../../etc/passwd"), "_.._etc_passwd.mp4");
/// assert_eq!(cometapi_runway::task_file_name(""), "task.mp4");
/// ```
pub fn task_file_name(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(100)
        .collect();
    let safe = safe.trim_start_matches('.');
    let safe = if safe.is_empty() { "task" } else { safe };
    format!("{safe}.mp4")
}

/// Called with an item's index and what just happened to it.
pub type BatchUpdateCallback = Arc<dyn Fn(usize, &BatchUpdate) + Send + Sync>;

/// A step in an item's life, for progress displays.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BatchUpdate {
    /// Its create is being sent.
    Creating,
    /// Its task exists (created now, or found in the journal).
    Created {
        /// The task id.
        task_id: String,
    },
    /// A poll answered.
    Polled(Box<Task>),
    /// Bytes of its video written so far, and the total if announced.
    Downloading {
        /// Bytes so far.
        done: u64,
        /// The announced size.
        total: Option<u64>,
    },
}

/// How a batch runs.
///
/// ```
/// use cometapi_runway::BatchOptions;
/// let options = BatchOptions::default()
///     .concurrency(8)
///     .journal("out/batch-journal.jsonl")
///     .resubmit_failed(true);
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct BatchOptions {
    concurrency: usize,
    max_active: usize,
    journal: Option<PathBuf>,
    resubmit_uncertain: bool,
    resubmit_failed: bool,
    wait: Option<WaitOptions>,
    download: DownloadOptions,
    on_update: Option<BatchUpdateCallback>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            concurrency: 4,
            max_active: 256,
            journal: None,
            resubmit_uncertain: false,
            resubmit_failed: false,
            wait: None,
            download: DownloadOptions::default().idle_timeout(Duration::from_secs(60)),
            on_update: None,
        }
    }
}

impl fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchOptions")
            .field("concurrency", &self.concurrency)
            .field("max_active", &self.max_active)
            .field("journal", &self.journal)
            .field("resubmit_uncertain", &self.resubmit_uncertain)
            .field("resubmit_failed", &self.resubmit_failed)
            .field("wait", &self.wait)
            .field("download", &self.download)
            .finish_non_exhaustive()
    }
}

impl BatchOptions {
    /// The most creates in flight at once (default 4, at least 1). A `429` halves the number
    /// allowed and pauses creates for its `Retry-After`; successes raise it again, one at a
    /// time, never above this.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The most items between their create and their saved file at once (default 256): tasks
    /// rendering at the service, and downloads. Waits and downloads overlap freely below it.
    pub fn max_active(mut self, n: usize) -> Self {
        self.max_active = n.max(1);
        self
    }

    /// Keep a journal at `path` (append-only JSON lines, synced before each paid step): resume from
    /// it, and refuse to run while another run holds it.
    pub fn journal(mut self, path: impl Into<PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Create again an item whose earlier create may or may not have reached the service (its
    /// answer was lost). Off by default: it may pay for a second task.
    pub fn resubmit_uncertain(mut self, yes: bool) -> Self {
        self.resubmit_uncertain = yes;
        self
    }

    /// Submit an item once more, with a new seed, when its task failed in a way a retry may
    /// fix ([`Task::retry_may_help`]). Off by default: it costs a second task.
    pub fn resubmit_failed(mut self, yes: bool) -> Self {
        self.resubmit_failed = yes;
        self
    }

    /// How each task is waited on (default: the client's wait options).
    pub fn wait_options(mut self, options: WaitOptions) -> Self {
        self.wait = Some(options);
        self
    }

    /// How each video is downloaded (default: an idle timeout of 60 s, no overall limit).
    /// Files are always replaced: outputs belong to the batch.
    pub fn download_options(mut self, options: DownloadOptions) -> Self {
        self.download = options;
        self
    }

    /// Report each item's progress.
    pub fn on_update(mut self, f: impl Fn(usize, &BatchUpdate) + Send + Sync + 'static) -> Self {
        self.on_update = Some(Arc::new(f));
        self
    }
}

/// What became of one item.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchResult {
    /// Its position in the input, from 0.
    pub index: usize,
    /// Its task, if one exists.
    pub task_id: Option<String>,
    /// Where its video goes.
    pub output: PathBuf,
    /// What happened.
    pub outcome: BatchOutcome,
}

/// How one item ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum BatchOutcome {
    /// The video was saved by this run.
    Saved {
        /// Its size.
        bytes: u64,
    },
    /// The journal says it was saved earlier and the file is there, whole: nothing was done.
    AlreadySaved {
        /// Its size.
        bytes: u64,
    },
    /// Something failed: the task, its download, or a create the service refused.
    Failed(Error),
    /// A create was sent but its answer was lost (now or in an earlier run): a task may exist.
    /// Not created again unless [`BatchOptions::resubmit_uncertain`].
    Uncertain {
        /// Why, when it happened in this run.
        error: Option<Error>,
    },
    /// Never created: the batch stopped first.
    NotStarted {
        /// Why the batch stopped.
        reason: StopReason,
    },
    /// Stopped while its task was rendering or downloading; the task goes on, and a rerun with
    /// the same journal picks it up.
    Interrupted,
}

/// Why a batch stopped creating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`BatchStopper::stop`] was called.
    Requested,
    /// An error that would fail every create (a refused key, the network, the journal).
    Error,
}

impl BatchResult {
    /// True when the video is on disk.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, BatchOutcome::Saved { .. } | BatchOutcome::AlreadySaved { .. })
    }
}

/// Stops a running batch: no new creates; creates in flight finish and are journalled; waits
/// and downloads end as [`BatchOutcome::Interrupted`]. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct BatchStopper(Arc<Stop>);

#[derive(Debug, Default)]
struct Stop {
    flag: AtomicBool,
    reason_error: AtomicBool,
    notify: Notify,
}

impl BatchStopper {
    /// Stops the batch.
    pub fn stop(&self) {
        self.stop_for(StopReason::Requested);
    }

    /// Whether [`BatchStopper::stop`] was called, or an error stopped the batch.
    pub fn is_stopped(&self) -> bool {
        self.0.flag.load(Ordering::SeqCst)
    }

    fn stop_for(&self, reason: StopReason) {
        if reason == StopReason::Error {
            self.0.reason_error.store(true, Ordering::SeqCst);
        }
        self.0.flag.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Why the batch stopped creating, if it did: once the stream has ended, `Some(Error)` means
    /// an error that every create would meet (a refused key, the network, the journal) cut the
    /// run short.
    pub fn stopped_by(&self) -> Option<StopReason> {
        self.is_stopped().then(|| self.reason())
    }

    fn reason(&self) -> StopReason {
        if self.0.reason_error.load(Ordering::SeqCst) {
            StopReason::Error
        } else {
            StopReason::Requested
        }
    }

    async fn stopped(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// A running batch: a [`Stream`] of [`BatchResult`]s, one per item, in the order they finish.
pub struct Batch {
    stream: Pin<Box<dyn Stream<Item = BatchResult> + Send>>,
    stopper: BatchStopper,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch").field("stopped", &self.stopper.is_stopped()).finish_non_exhaustive()
    }
}

impl Batch {
    /// A handle that stops this batch (from a Ctrl-C handler, say).
    pub fn stopper(&self) -> BatchStopper {
        self.stopper.clone()
    }
}

impl Stream for Batch {
    type Item = BatchResult;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BatchResult>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl Client {
    /// Runs many requests: creates paced to the service's rate limit, waits and downloads
    /// overlapping, each video saved to its item's file. With a journal, a rerun after a crash
    /// or a stop skips saved items, waits on tasks already created, and never creates a task
    /// twice unless asked.
    ///
    /// Fails at once only if the journal cannot be opened or is in use by another run.
    ///
    /// ```no_run
    /// # async fn run(client: cometapi_runway::Client) -> Result<(), cometapi_runway::Error> {
    /// use cometapi_runway::{BatchItem, BatchOptions, ImageToVideo};
    /// use futures_util::StreamExt;
    ///
    /// let items = ["cat", "dog"].map(|name| {
    ///     BatchItem::new(ImageToVideo::new(format!("https://example.com/{name}.jpg")), format!("{name}.mp4"))
    /// });
    /// let mut batch = client.batch(items, BatchOptions::default().journal("journal.jsonl"))?;
    /// while let Some(result) = batch.next().await {
    ///     println!("item {}: {:?}", result.index, result.outcome);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn batch(&self, items: impl IntoIterator<Item = BatchItem>, options: BatchOptions) -> Result<Batch, Error> {
        let journal = options.journal.as_deref().map(Journal::open).transpose()?;
        let items: Vec<BatchItem> = items.into_iter().collect();
        if journal.is_some() {
            remove_partial_downloads(&items);
        }
        let stopper = BatchStopper::default();
        let wait = options.wait.clone().unwrap_or_else(|| self.wait.clone());
        let run = Arc::new(Run {
            client: self.clone(),
            pacer: Pacer::new(options.concurrency),
            journal: Mutex::new(journal),
            stopper: stopper.clone(),
            wait,
            options,
        });
        let mut seen: HashMap<String, u32> = HashMap::new();
        let keyed: Vec<(usize, String, BatchItem)> = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let key = item.key.clone().unwrap_or_else(|| item.default_key());
                // Identical items are distinct items: the second is `key#2`.
                let n = seen.entry(key.clone()).or_default();
                *n += 1;
                let key = if *n == 1 { key } else { format!("{key}#{n}") };
                (index, key, item)
            })
            .collect();
        let max_active = run.options.max_active;
        let stream = futures_util::stream::iter(keyed)
            .map(move |(index, key, item)| {
                let run = run.clone();
                async move { run.item(index, key, item).await }
            })
            .buffer_unordered(max_active);
        Ok(Batch { stream: Box::pin(stream), stopper })
    }
}

struct Run {
    client: Client,
    options: BatchOptions,
    wait: WaitOptions,
    pacer: Pacer,
    journal: Mutex<Option<Journal>>,
    stopper: BatchStopper,
}

/// What a create came to.
enum Created {
    Id(String),
    Done(BatchOutcome),
}

impl Run {
    async fn item(&self, index: usize, key: String, item: BatchItem) -> BatchResult {
        let mut result =
            BatchResult { index, task_id: None, output: item.output.clone(), outcome: BatchOutcome::Interrupted };
        let record = self.journal.lock().expect("journal lock").as_ref().and_then(|j| j.item(&key).cloned());
        let record = record.unwrap_or_default();
        if let Some((task, file, bytes)) = &record.saved {
            if std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() == *bytes) {
                result.task_id = Some(task.clone());
                result.output = PathBuf::from(file);
                result.outcome = BatchOutcome::AlreadySaved { bytes: *bytes };
                return result;
            }
        }
        // An intent never answered counts as an attempt: that task may exist.
        let mut attempts = record.tasks.len() + usize::from(record.uncertain);
        let mut task_id = match (&record.saved, record.open_task()) {
            // Saved once, but the file is gone or not whole: fetch it again from the same task.
            (Some((task, _, _)), _) => Some(task.clone()),
            (None, Some(task)) => Some(task.to_string()),
            (None, None) if record.uncertain && !self.options.resubmit_uncertain => {
                result.outcome = BatchOutcome::Uncertain { error: None };
                return result;
            }
            // The task failed: poll it once more, for its failure (and a resubmit if asked).
            (None, None) => record.failed.last().map(|(task, _)| task.clone()),
        };
        let mut request = item.request.clone();
        loop {
            let id = match task_id.take() {
                Some(id) => id,
                None => match self.create(index, &key, &request).await {
                    Created::Id(id) => {
                        attempts += 1;
                        id
                    }
                    Created::Done(outcome) => {
                        result.outcome = outcome;
                        return result;
                    }
                },
            };
            result.task_id = Some(id.clone());
            result.output = item.output_for(&id);
            self.update(index, &BatchUpdate::Created { task_id: id.clone() });
            match self.wait_and_save(index, &key, &id, &result.output).await {
                Err(Error::TaskFailed { task })
                    if self.options.resubmit_failed
                        && attempts < 2
                        && task.retry_may_help()
                        && !self.stopper.is_stopped() =>
                {
                    tracing::info!(task_id = %id, code = ?task.failure_code, "task failed; submitting once more with a new seed");
                    let old = request.build().ok().and_then(|b| b.seed);
                    request = request.seed(new_seed(old.map(|s| s as u64)));
                    attempts = attempts.max(1);
                }
                Err(e) => {
                    result.outcome = BatchOutcome::Failed(e);
                    return result;
                }
                Ok(None) => {
                    result.outcome = BatchOutcome::Interrupted;
                    return result;
                }
                Ok(Some(bytes)) => {
                    result.outcome = BatchOutcome::Saved { bytes };
                    return result;
                }
            }
        }
    }

    /// Sends the create, journalled before and after; a `429` waits its turn and tries again.
    async fn create(&self, index: usize, key: &str, request: &ImageToVideo) -> Created {
        if let Err(e) = request.build() {
            return Created::Done(BatchOutcome::Failed(e));
        }
        for _ in 0..MAX_THROTTLED_CREATES {
            let Some(permit) = self.pacer.acquire(&self.stopper).await else {
                return Created::Done(BatchOutcome::NotStarted { reason: self.stopper.reason() });
            };
            if let Err(e) = self.record(Entry::Intent { item: key.to_string() }) {
                return Created::Done(BatchOutcome::Failed(e));
            }
            self.update(index, &BatchUpdate::Creating);
            let epoch = permit.epoch;
            let sent = self.client.create(request).await;
            let error = match sent {
                Ok(id) => {
                    self.pacer.succeeded();
                    drop(permit);
                    if let Err(e) = self.record(Entry::Created { item: key.to_string(), task: id.clone() }) {
                        return Created::Done(BatchOutcome::Failed(e));
                    }
                    return Created::Id(id);
                }
                Err(e) => e,
            };
            drop(permit);
            if maybe_created(&error) {
                // The intent stays open: a rerun reports it as uncertain.
                if matches!(error, Error::Transport { .. }) {
                    self.stopper.stop_for(StopReason::Error);
                }
                return Created::Done(BatchOutcome::Uncertain { error: Some(error) });
            }
            let reason = shorten_reason(&error);
            if let Err(e) = self.record(Entry::NotCreated { item: key.to_string(), reason }) {
                return Created::Done(BatchOutcome::Failed(e));
            }
            match &error {
                Error::Api { status: 429, retry_after, .. } => {
                    self.pacer.throttled(epoch, *retry_after);
                }
                e if stops_the_run(e) => {
                    self.stopper.stop_for(StopReason::Error);
                    return Created::Done(BatchOutcome::Failed(error));
                }
                _ => return Created::Done(BatchOutcome::Failed(error)),
            }
        }
        Created::Done(BatchOutcome::Failed(Error::invalid(
            "batch",
            "create",
            format!("rate limited {MAX_THROTTLED_CREATES} times in a row"),
        )))
    }

    /// Waits for the task and saves its video; `Ok(None)` when stopped first.
    async fn wait_and_save(&self, index: usize, key: &str, id: &str, output: &Path) -> Result<Option<u64>, Error> {
        let work = async {
            let run = self;
            let mut wait = run.wait.clone();
            if let Some(report) = run.options.on_update.clone() {
                wait = wait.on_update(move |task| report(index, &BatchUpdate::Polled(Box::new(task.clone()))));
            }
            let task = match run.client.wait_with(id, &wait).await {
                Ok(task) => task,
                Err(Error::TaskFailed { task }) => {
                    let already = run
                        .journal
                        .lock()
                        .expect("journal lock")
                        .as_ref()
                        .and_then(|j| j.item(key).map(|r| r.failed.iter().any(|(t, _)| t == id)))
                        .unwrap_or(false);
                    if !already {
                        run.record(Entry::Failed {
                            item: key.to_string(),
                            task: id.to_string(),
                            retry_may_help: task.retry_may_help(),
                        })?;
                    }
                    return Err(Error::TaskFailed { task });
                }
                Err(e) => return Err(e),
            };
            let mut download = run.options.download.clone().overwrite(true);
            if let Some(report) = run.options.on_update.clone() {
                download =
                    download.on_progress(move |done, total| report(index, &BatchUpdate::Downloading { done, total }));
            }
            let bytes = run.client.download_output(&task, output, &download).await?;
            run.record(Entry::Saved {
                item: key.to_string(),
                task: id.to_string(),
                file: output.display().to_string(),
                bytes,
            })?;
            Ok(bytes)
        };
        tokio::select! {
            done = work => done.map(Some),
            () = self.stopper.stopped() => Ok(None),
        }
    }

    fn record(&self, entry: Entry) -> Result<(), Error> {
        let mut journal = self.journal.lock().expect("journal lock");
        let Some(journal) = journal.as_mut() else { return Ok(()) };
        journal.record(entry).inspect_err(|_| self.stopper.stop_for(StopReason::Error))
    }

    fn update(&self, index: usize, update: &BatchUpdate) {
        if let Some(report) = &self.options.on_update {
            report(index, update);
        }
    }
}

/// A run killed mid-download leaves its temporary file behind (a kill runs no destructor).
/// The journal's lock says no other run is downloading here, so they can go.
fn remove_partial_downloads(items: &[BatchItem]) {
    let mut dirs: Vec<PathBuf> = items
        .iter()
        .map(|item| match item.name_prefix {
            Some(_) => item.output.clone(),
            None => item.output.parent().map(Path::to_path_buf).unwrap_or_default(),
        })
        .map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d })
        .collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(crate::download::TEMP_PREFIX) && name.ends_with(crate::download::TEMP_SUFFIX) {
                tracing::debug!(file = %entry.path().display(), "removing a download cut short by an earlier run");
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A create error after which the task may exist all the same.
fn maybe_created(e: &Error) -> bool {
    match e {
        Error::Api { status, .. } => *status >= 500 || *status == 408,
        Error::Transport { source, .. } => !source.as_ref().is_some_and(reqwest::Error::is_connect),
        Error::Decode { .. } => true,
        _ => false,
    }
}

/// A create error that every other create would meet too.
fn stops_the_run(e: &Error) -> bool {
    matches!(e, Error::Api { status: 401..=405, .. } | Error::Transport { .. } | Error::Io { .. })
}

fn shorten_reason(e: &Error) -> String {
    crate::error::shorten(&e.to_string(), 200)
}

/// A seed other than `old`.
fn new_seed(old: Option<u64>) -> u64 {
    loop {
        let seed = rand::random_range(0..=SEED_MAX);
        if Some(seed) != old {
            return seed;
        }
    }
}

/// Paces creates: at most `limit` in flight, `limit` halved by a `429` (once per round of
/// creates sent under the old limit), raised by one after `limit` successes, never above `max`;
/// a `429`'s `Retry-After` pauses every create.
struct Pacer {
    max: usize,
    state: Mutex<PacerState>,
    notify: Notify,
}

struct PacerState {
    limit: usize,
    in_flight: usize,
    streak: usize,
    epoch: u64,
    not_before: Option<Instant>,
}

struct Permit<'a> {
    pacer: &'a Pacer,
    epoch: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.pacer.state.lock().expect("pacer lock").in_flight -= 1;
        self.pacer.notify.notify_waiters();
    }
}

impl Pacer {
    fn new(max: usize) -> Pacer {
        let state = PacerState { limit: max, in_flight: 0, streak: 0, epoch: 0, not_before: None };
        Pacer { max, state: Mutex::new(state), notify: Notify::new() }
    }

    async fn acquire(&self, stop: &BatchStopper) -> Option<Permit<'_>> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if stop.is_stopped() {
                return None;
            }
            let pause = {
                let mut s = self.state.lock().expect("pacer lock");
                match s.not_before.filter(|t| *t > Instant::now()) {
                    Some(until) => Some(until),
                    None if s.in_flight < s.limit => {
                        s.in_flight += 1;
                        return Some(Permit { pacer: self, epoch: s.epoch });
                    }
                    None => None,
                }
            };
            tokio::select! {
                () = stop.stopped() => return None,
                () = async { match pause { Some(t) => tokio::time::sleep_until(t).await, None => notified.await } } => {}
            }
        }
    }

    fn succeeded(&self) {
        let mut s = self.state.lock().expect("pacer lock");
        s.streak += 1;
        if s.streak >= s.limit && s.limit < self.max {
            s.limit += 1;
            s.streak = 0;
            self.notify.notify_waiters();
        }
    }

    fn throttled(&self, epoch: u64, retry_after: Option<Duration>) {
        let mut s = self.state.lock().expect("pacer lock");
        if epoch == s.epoch {
            s.limit = (s.limit / 2).max(1);
            s.epoch += 1;
            s.streak = 0;
        }
        let until = Instant::now() + retry_after.unwrap_or(DEFAULT_THROTTLE_PAUSE);
        s.not_before = Some(s.not_before.map_or(until, |t| t.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    fn limit(pacer: &Pacer) -> usize {
        pacer.state.lock().unwrap().limit
    }

    #[tokio::test]
    async fn a_429_halves_creates_in_flight_once_per_round_and_successes_win_them_back_up_to_the_maximum() {
        let stop = BatchStopper::default();
        let pacer = Pacer::new(8);
        let permits: Vec<_> = (0..8).map(|_| pacer.acquire(&stop).now_or_never().unwrap().unwrap()).collect();
        assert!(pacer.acquire(&stop).now_or_never().is_none(), "the ninth waits");

        let epoch = permits[0].epoch;
        pacer.throttled(epoch, Some(Duration::ZERO));
        pacer.throttled(epoch, Some(Duration::ZERO));
        assert_eq!(limit(&pacer), 4, "creates sent under the old limit halve it once");
        drop(permits);

        for _ in 0..4 {
            pacer.succeeded();
        }
        assert_eq!(limit(&pacer), 5, "one more after a round of successes");
        for _ in 0..100 {
            pacer.succeeded();
        }
        assert_eq!(limit(&pacer), 8, "never above the maximum");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_every_create_and_a_stop_ends_the_wait() {
        let stop = BatchStopper::default();
        let pacer = Pacer::new(2);
        let epoch = pacer.acquire(&stop).await.unwrap().epoch;
        pacer.throttled(epoch, Some(Duration::from_secs(3)));
        let started = Instant::now();
        drop(pacer.acquire(&stop).await.unwrap());
        assert_eq!(started.elapsed().as_secs(), 3);

        pacer.throttled(epoch + 1, Some(Duration::from_secs(60)));
        stop.stop();
        assert!(pacer.acquire(&stop).await.is_none());
        assert_eq!(stop.stopped_by(), Some(StopReason::Requested));
    }
}
