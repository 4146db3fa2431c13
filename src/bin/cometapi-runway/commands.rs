//! What each subcommand does, through the library's public API only.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use cometapi_runway::{
    mock::MockServer, Client, DownloadOptions, Error, ImageToVideo, PollPolicy, TaskStatus, WaitOptions,
};
use serde_json::json;

use crate::{
    args::{Global, RequestArgs, WaitArgs},
    exit::{Code, Failure},
    image, learned, output,
    progress::Progress,
    simulator,
};

/// How long `task_not_exist` is ridden out with `--mock`: the in-process simulator only knows
/// tasks created by this very process, so an unknown id is unknown for good.
const MOCK_NOT_FOUND_GRACE: Duration = Duration::from_secs(2);
/// Polls with `--mock`: often enough that the progress visibly moves.
const MOCK_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A client, and the simulator it talks to with `--mock` (kept alive as long as the client).
pub struct Session {
    client: Client,
    wait: WaitOptions,
    json: bool,
    progress: Progress,
    learned: Option<learned::Store>,
    _simulator: Option<MockServer>,
}

impl Session {
    /// Builds the client from the global flags; starts the simulator for `--mock`.
    pub async fn connect(global: &Global) -> Result<Session, Failure> {
        let mut wait = WaitOptions::default();
        let mut builder = Client::builder().runway_version(global.runway_version.clone());
        let simulator = if global.mock {
            let server = simulator::for_cli().try_start().await.map_err(|e| {
                Failure::new(Code::Api, "io", format!("cannot start the built-in simulator on loopback: {e}"))
            })?;
            builder = builder.api_key(server.api_key()).base_url(server.base_url());
            wait = wait.poll_policy(PollPolicy::fixed(MOCK_POLL_INTERVAL)).not_found_grace(MOCK_NOT_FOUND_GRACE);
            Some(server)
        } else {
            let key = global.api_key.as_deref().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                Failure::usage(
                    "no API key: set COMETAPI_KEY (or pass --api-key), or pass --mock to try the built-in simulator",
                )
            })?;
            builder = builder.api_key(key);
            if let Some(url) = &global.base_url {
                builder = builder.base_url(url.clone());
            }
            None
        };
        if let Some(grace) = global.not_found_grace {
            wait = wait.not_found_grace(grace);
        }
        if let Some(interval) = global.poll_interval {
            wait = wait.poll_policy(PollPolicy::fixed(interval));
        }
        let base_url = global.base_url.as_deref().unwrap_or(cometapi_runway::DEFAULT_BASE_URL);
        let learned = learned::Store::open(base_url, global.no_learn || global.mock);
        if let Some(store) = &learned {
            builder = builder.learned(store.load());
        }
        let client = builder.build()?;
        Ok(Session {
            client,
            wait,
            json: global.json,
            progress: Progress::new(global.quiet, global.verbose > 0),
            learned,
            _simulator: simulator,
        })
    }

    /// `create`: prints the id.
    pub async fn create(&self, request: &ImageToVideo) -> Result<(), Failure> {
        let id = self.create_task(request).await?;
        if self.json {
            output::json_line(&json!({ "id": id }));
        } else {
            output::text(&id);
        }
        Ok(())
    }

    /// `generate`: create, then as `wait`.
    pub async fn generate(&self, request: &ImageToVideo, args: &WaitArgs) -> Result<(), Failure> {
        let id = self.create_task(request).await?;
        self.progress.note(&format!("created task {id}"));
        self.wait(&id, args).await
    }

    /// Creates the task. The library never retries a create whose answer was lost (that could
    /// bill twice), so when the task may exist after all, say so before the user retries.
    async fn create_task(&self, request: &ImageToVideo) -> Result<String, Failure> {
        self.client.create(request).await.map_err(|e| {
            let maybe_created = match &e {
                Error::Api { status, .. } => *status >= 500,
                Error::Transport { timeout, .. } => *timeout,
                Error::Decode { .. } => true,
                _ => false,
            };
            let mut failure = Failure::from(e);
            if maybe_created {
                failure
                    .message
                    .push_str("; the task may have been created anyway: check your CometAPI dashboard before retrying");
            }
            failure
        })
    }

    /// `wait`: wait with progress, then download unless told not to. Ctrl-C says how to resume:
    /// the task goes on (and is billed) whether or not anyone waits for it.
    pub async fn wait(&self, id: &str, args: &WaitArgs) -> Result<(), Failure> {
        tokio::select! {
            result = self.wait_and_save(id, args) => result,
            Ok(()) = tokio::signal::ctrl_c() => Err(Failure::new(
                Code::Interrupted,
                "interrupted",
                format!("interrupted; task {id} goes on at the service: resume with: cometapi-runway wait {id}"),
            )
            .for_task(id)),
        }
    }

    async fn wait_and_save(&self, id: &str, args: &WaitArgs) -> Result<(), Failure> {
        let progress = self.progress.clone();
        let mut options = self.wait.clone().on_update(move |task| progress.update(task));
        if let Some(timeout) = args.timeout {
            options = options.timeout(timeout);
        }
        self.progress.waiting(id);
        let task = self.client.wait_with(id, &options).await;
        if let Some(store) = &self.learned {
            store.save(self.client.learned());
        }
        let task = task.map_err(|e| Failure::from(e).for_task(id))?;
        let Some(url) = task.output.first().cloned() else {
            return Err(Failure::new(Code::Api, "no_output", "the task succeeded but the service gave no output URL")
                .for_task(id));
        };
        if args.no_download {
            self.progress.finish(&format!("task {id} succeeded"));
            if self.json {
                output::json_line(&output::task_object(&task, &[]));
            } else {
                output::text(&task.output.join("\n"));
            }
            return Ok(());
        }
        let path = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("{id}.mp4")));
        let bytes = self.download(id, &url, &path, args.force).await?;
        self.progress.finish(&format!("saved {} ({bytes} bytes) from task {id}", path.display()));
        if self.json {
            output::json_line(&output::task_object(
                &task,
                &[("file", json!(path.display().to_string())), ("bytes", json!(bytes))],
            ));
        } else {
            output::text(&path.display().to_string());
        }
        Ok(())
    }

    async fn download(&self, id: &str, url: &str, path: &Path, force: bool) -> Result<u64, Failure> {
        if !force && path.exists() {
            return Err(Failure::usage(format!(
                "{} exists; the task succeeded: save it elsewhere with: cometapi-runway wait {id} --output FILE \
                 (or add --force to replace it)",
                path.display(),
            ))
            .for_task(id));
        }
        self.progress.downloading();
        let progress = self.progress.clone();
        let options = DownloadOptions::default().overwrite(force).on_progress(move |done, total| {
            progress.downloaded(done, total);
        });
        self.client.download_with(url, path, &options).await.map_err(|e| Failure::from(e).for_task(id))
    }

    /// `status`: one poll. A task that failed or was cancelled exits 4, like `wait` would.
    pub async fn status(&self, id: &str) -> Result<(), Failure> {
        let task = self.client.get_task(id).await.map_err(|e| {
            if !e.is_task_not_exist() {
                return Failure::from(e);
            }
            Failure::new(
                Code::NotFound,
                "not_found",
                format!(
                    "task {id} not found (the service answered task_not_exist); check the id, or if it was created \
                     seconds ago, retry or use: cometapi-runway wait {id}"
                ),
            )
        })?;
        if self.json {
            output::json_line(&output::task_object(&task, &[]));
        } else {
            output::text(&output::task_text(&task));
        }
        // The task itself is the result, already printed; only the exit code and stderr tell.
        let ended = match task.status {
            TaskStatus::Failed => Error::TaskFailed { task: Box::new(task) },
            TaskStatus::Cancelled => Error::TaskCancelled { task: Box::new(task) },
            _ => return Ok(()),
        };
        Err(Failure::from(ended).for_task(id).quiet_on_stdout())
    }
}

/// Reads the request flags into a request, checking every rule: nothing is sent on error.
pub fn request(args: &RequestArgs) -> Result<ImageToVideo, Failure> {
    let image = image::resolve(&args.image)?;
    let ratio = image.ratio(args.ratio)?;
    let mut request = ImageToVideo::new(image.prompt_image).model(args.model.as_str()).watermark(args.watermark);
    if let Some(ratio) = ratio {
        request = request.ratio(ratio);
    }
    if let Some(text) = &args.prompt {
        request = request.prompt_text(text.clone());
    }
    if let Some(seed) = args.seed {
        request = request.seed(seed);
    }
    if let Some(d) = args.duration {
        request = request.duration(d);
    }
    request.build()?;
    Ok(request)
}

/// Refuses to start a paid task whose video could not be saved where asked.
pub fn check_output(args: &WaitArgs) -> Result<(), Failure> {
    let Some(path) = &args.output else { return Ok(()) };
    if !args.force && path.exists() {
        return Err(Failure::usage(format!(
            "{} exists; choose another --output or add --force to replace it (nothing was sent)",
            path.display()
        )));
    }
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(Failure::usage(format!(
            "the directory {} of --output does not exist; create it first (nothing was sent)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}
