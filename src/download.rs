//! Fetching an output video to a file: streamed, never with the API key, all or nothing.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::{error::Error, Client};

/// Called with `(bytes so far, total if the server announced it)` as a download goes.
pub type DownloadProgress = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// How [`Client::download_with`] treats the target.
///
/// ```
/// use cometapi_runway::DownloadOptions;
/// let options = DownloadOptions::default()
///     .overwrite(true)
///     .on_progress(|done, total| eprintln!("{done} of {total:?} bytes"));
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct DownloadOptions {
    overwrite: bool,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    progress: Option<DownloadProgress>,
}

/// The temporary file a download streams into, beside its target, is named
/// `<TEMP_PREFIX>random<TEMP_SUFFIX>`.
pub(crate) const TEMP_PREFIX: &str = ".cometapi-download-";
pub(crate) const TEMP_SUFFIX: &str = ".part";

/// How long a download with an idle timeout but no overall one may take: in effect unbounded,
/// the idle timeout is what ends a stalled transfer.
const NO_OVERALL_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

impl fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("overwrite", &self.overwrite)
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("progress", &self.progress.as_ref().map(|_| "Fn(u64, Option<u64>)"))
            .finish()
    }
}

impl DownloadOptions {
    /// Replace an existing file (default: refuse).
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }

    /// How long the whole download may take (default: the client's request timeout, 60 s
    /// unless configured). Raise it for large outputs on slow links.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// End the download when no byte has arrived for this long, however long the whole takes
    /// (default: none, and the whole download is bounded by the client's request timeout).
    /// Setting it lifts that overall bound (unless [`DownloadOptions::timeout`] sets one): a
    /// large video over a slow link then completes as long as it keeps moving.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cometapi_runway::DownloadOptions;
    /// let options = DownloadOptions::default().idle_timeout(Duration::from_secs(30));
    /// # let _ = options;
    /// ```
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// Report progress while downloading.
    pub fn on_progress(mut self, f: impl Fn(u64, Option<u64>) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
}

impl Client {
    /// Downloads `url` (an output URL of a task) to `path`, refusing to overwrite a file.
    /// Returns the number of bytes written.
    ///
    /// The body is streamed into a temporary file beside `path` and renamed only when complete
    /// and as long as the server announced; on any failure, and if the future is dropped midway,
    /// nothing is left behind. The whole download is bounded by the client's request timeout
    /// (see [`DownloadOptions::timeout`]). The request never carries the API key: output URLs
    /// live on another host.
    ///
    /// ```no_run
    /// # async fn run(client: cometapi_runway::Client, task: cometapi_runway::Task) -> Result<(), cometapi_runway::Error> {
    /// client.download(&task.output[0], "cat.mp4").await?;
    /// # Ok(()) }
    /// ```
    pub async fn download(&self, url: &str, path: impl AsRef<Path>) -> Result<u64, Error> {
        self.download_with(url, path, &DownloadOptions::default()).await
    }

    /// [`Client::download`] with options.
    pub async fn download_with(
        &self,
        url: &str,
        path: impl AsRef<Path>,
        options: &DownloadOptions,
    ) -> Result<u64, Error> {
        let path = path.as_ref();
        let fail = |message: String| Error::Download { url: url.to_string(), status: None, message };
        let parsed =
            url::Url::parse(url).map_err(|e| Error::invalid("url", format!("{url:?}"), format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid("url", format!("{url:?}"), "must be http:// or https://"));
        }
        if !options.overwrite && tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Err(Error::invalid(
                "output",
                path.display(),
                "file exists; choose another path or allow overwriting",
            ));
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |source| Error::Io { path: path.to_path_buf(), source };

        // The shared pool, but not the API hooks: no Authorization header reaches the CDN.
        let http = progenitor_client::ClientInfo::client(&self.raw);
        let mut get = http.get(parsed);
        match (options.timeout, options.idle_timeout) {
            (Some(timeout), _) => get = get.timeout(timeout),
            (None, Some(_)) => get = get.timeout(NO_OVERALL_LIMIT),
            (None, None) => {}
        }
        let idle = options.idle_timeout.unwrap_or(NO_OVERALL_LIMIT);
        let stalled = || fail(format!("no data for {idle:?} (the idle timeout): timed out"));
        let response = match tokio::time::timeout(idle, get.send()).await {
            Ok(sent) => sent.map_err(|e| fail(Error::transport(e).to_string()))?,
            Err(_) => return Err(stalled()),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Download {
                url: url.to_string(),
                status: Some(status.as_u16()),
                message: format!("HTTP {status} (output URLs expire 24-48 h after the task finished)"),
            });
        }
        let expected = response.content_length();

        let mut builder = tempfile::Builder::new();
        builder.prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX);
        // Temporary files are owner-only (0600); the video should get the usual umask-based mode.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder.tempfile_in(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        let (std_file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut written: u64 = 0;
        let mut body = response.bytes_stream();
        // `temp_path` deletes the file when dropped: every early return below cleans up.
        loop {
            let next = tokio::time::timeout(idle, body.next()).await.map_err(|_| stalled())?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| fail(format!("cut short after {written} bytes: {}", Error::transport(e))))?;
            file.write_all(&chunk).await.map_err(io)?;
            written += chunk.len() as u64;
            if let Some(report) = &options.progress {
                report(written, expected);
            }
        }
        if let Some(expected) = expected {
            if written != expected {
                return Err(fail(format!("got {written} of {expected} bytes")));
            }
        }
        file.flush().await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        drop(file);
        let persisted = if options.overwrite {
            temp_path.persist(path).map_err(|e| e.error)
        } else {
            // Fails if the file appeared meanwhile; the temporary file is then removed.
            temp_path.persist_noclobber(path).map_err(|e| e.error)
        };
        persisted.map_err(io)?;
        tracing::info!(bytes = written, path = %path.display(), "downloaded");
        Ok(written)
    }
}

impl Client {
    /// Downloads the first output of task `id` to `path`: polls the task for its output URL,
    /// and if the output host refuses that URL as expired or gone (403, 404, 410; output URLs
    /// are signed for 24–48 h) polls again for a fresh one and retries once.
    ///
    /// ```no_run
    /// # async fn run(client: cometapi_runway::Client) -> Result<(), cometapi_runway::Error> {
    /// use cometapi_runway::DownloadOptions;
    /// client.download_task_output("3d957031-...", "cat.mp4", &DownloadOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_task_output(
        &self,
        id: &str,
        path: impl AsRef<Path>,
        options: &DownloadOptions,
    ) -> Result<u64, Error> {
        self.download_output_of(id, None, path.as_ref(), options).await
    }

    /// Downloads the first output of a succeeded `task` (as [`Client::wait`] returns it) to
    /// `path`; if its URL has expired meanwhile (403, 404, 410 from the output host), polls the
    /// task for a fresh one and retries once.
    ///
    /// ```no_run
    /// # async fn run(client: cometapi_runway::Client) -> Result<(), cometapi_runway::Error> {
    /// use cometapi_runway::DownloadOptions;
    /// let task = client.wait("3d957031-...").await?;
    /// // ... hours later: the URL in `task` may have expired; a fresh one is fetched if so.
    /// client.download_output(&task, "cat.mp4", &DownloadOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_output(
        &self,
        task: &crate::Task,
        path: impl AsRef<Path>,
        options: &DownloadOptions,
    ) -> Result<u64, Error> {
        self.download_output_of(&task.id, task.output.first().map(String::as_str), path.as_ref(), options).await
    }

    async fn download_output_of(
        &self,
        id: &str,
        url: Option<&str>,
        path: &Path,
        options: &DownloadOptions,
    ) -> Result<u64, Error> {
        let first = match url {
            Some(url) => url.to_string(),
            None => self.output_url(id).await?,
        };
        match self.download_with(&first, path, options).await {
            Err(e) if e.is_expired_output() => {
                tracing::info!(task_id = %id, error = %e, "output URL refused; polling for a fresh one");
                let fresh = self.output_url(id).await?;
                self.download_with(&fresh, path, options).await
            }
            other => other,
        }
    }

    async fn output_url(&self, id: &str) -> Result<String, Error> {
        let task = self.get_task(id).await?;
        match task.status {
            crate::TaskStatus::Succeeded => {}
            crate::TaskStatus::Failed => return Err(Error::TaskFailed { task: Box::new(task) }),
            crate::TaskStatus::Cancelled => return Err(Error::TaskCancelled { task: Box::new(task) }),
            _ => {
                return Err(Error::invalid("task", &task.id, format!("is {}; it has no output yet", task.status)));
            }
        }
        task.output.first().cloned().ok_or_else(|| Error::Download {
            url: String::new(),
            status: None,
            message: format!("task {id} succeeded but the service gave no output URL"),
        })
    }
}
