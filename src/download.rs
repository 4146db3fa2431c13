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
    progress: Option<DownloadProgress>,
}

impl fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("overwrite", &self.overwrite)
            .field("timeout", &self.timeout)
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
        let fail = |message: String| Error::Download { url: url.to_string(), message };
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
        if let Some(timeout) = options.timeout {
            get = get.timeout(timeout);
        }
        let response = get.send().await.map_err(|e| fail(Error::transport(e).to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status} (output URLs expire 24-48 h after the task finished)")));
        }
        let expected = response.content_length();

        let mut builder = tempfile::Builder::new();
        builder.prefix(".cometapi-download-").suffix(".part");
        // Temporary files are owner-only (0600); the video should get the usual umask-based mode.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let temp = builder.tempfile_in(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        let (std_file, temp_path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(std_file);
        let mut written: u64 = 0;
        let mut body = response.bytes_stream();
        // `temp_path` deletes the file when dropped: every early return below cleans up.
        while let Some(chunk) = body.next().await {
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
