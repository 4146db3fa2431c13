//! `create`: start a task and print its id, without waiting.

use cometapi_runway::ImageToVideo;
use serde_json::json;

use super::Session;
use crate::{exit::Failure, output};

impl Session {
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
}
