//! `wait`: wait for a task created earlier, with progress, and download its video.

use std::path::{Path, PathBuf};

use cometapi_runway::{task_file_name, DownloadOptions, Error, Task};
use serde_json::json;

use super::{batch::DEFAULT_DOWNLOAD_IDLE, Session};
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
        let task = self.client.wait_with(id, &options).await;
        if let Some(store) = &self.learned {
            store.save(self.client.learned());
        }
        let task = task.map_err(|e| Failure::from(e).for_task(id))?;
        if task.output.is_empty() {
            return Err(Failure::new(Code::Api, "no_output", "the task succeeded but the service gave no output URL")
                .for_task(id));
        }
        if args.no_download {
            self.progress.finish(&output::clean(&format!("task {id} succeeded")));
            if self.json {
                output::json_line(&output::task_object(&task, &[]));
            } else {
                output::text(&task.output.join("\n"));
            }
            return Ok(());
        }
        // The id comes from the server: never a path of its choosing.
        let path = args.output.clone().unwrap_or_else(|| PathBuf::from(task_file_name(id)));
        let bytes = self.download(&task, &path, args).await?;
        self.progress.finish(&output::clean(&format!("saved {} ({bytes} bytes) from task {id}", path.display())));
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

    /// Saves the task's video; an output URL that expired meanwhile is fetched fresh once. A
    /// paid task exists by now: no failure here may claim "nothing was sent" (exit 2).
    async fn download(&self, task: &Task, path: &Path, args: &WaitArgs) -> Result<u64, Failure> {
        let id = &task.id;
        let exists = || {
            Failure::new(
                Code::Api,
                "io",
                format!(
                    "{} exists; the task succeeded: save it elsewhere with: cometapi-runway wait {id} --output FILE \
                     (or add --force to replace it)",
                    path.display(),
                ),
            )
            .for_task(id)
        };
        if !args.force && path.exists() {
            return Err(exists());
        }
        self.progress.downloading();
        let progress = self.progress.clone();
        let idle = args.download_idle_timeout.unwrap_or(DEFAULT_DOWNLOAD_IDLE);
        let options =
            DownloadOptions::default().overwrite(args.force).idle_timeout(idle).on_progress(move |done, total| {
                progress.downloaded(done, total);
            });
        self.client.download_output(task, path, &options).await.map_err(|e| match e {
            Error::InvalidInput { field: "output", .. } => exists(),
            e => Failure::from(e).for_task(id),
        })
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
