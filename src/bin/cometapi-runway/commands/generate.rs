//! `generate`: create a task, then wait for it and download the video.

use cometapi_runway::ImageToVideo;

use super::Session;
use crate::{args::WaitArgs, exit::Failure};

impl Session {
    /// `generate`: create, then as `wait`.
    pub async fn generate(&self, request: &ImageToVideo, args: &WaitArgs) -> Result<(), Failure> {
        let id = self.create_task(request).await?;
        self.progress.note(&format!("created task {id}"));
        self.wait(&id, args).await
    }
}
