//! `wait`: wait for a task created earlier, with progress, and download its video.

use std::path::{Path, PathBuf};

use cometapi_runway::DownloadOptions;
use serde_json::json;

use super::Session;
use crate::{
    args::WaitArgs,
    exit::{Code, Failure},
    output,
};

impl Session {
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
        let task = self.client.wait_with(id, &options).await.map_err(|e| Failure::from(e).for_task(id))?;
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
