//! `status`: one poll of a task, as the service sees it now.

use cometapi_runway::{Error, TaskStatus};

use super::Session;
use crate::{
    exit::{Code, Failure},
    output,
};

impl Session {
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
