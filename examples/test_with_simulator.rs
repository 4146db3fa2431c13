//! Testing your own code against the simulator: the crate's `mock` feature as a dev-dependency,
//! one [`MockServer`] per test, each configured for the case under test.
//!
//! ```toml
//! [dev-dependencies]
//! cometapi-runway = { version = "0.1", features = ["mock"] }
//! ```
//!
//! `make_clip` below stands for your code. The tests at the bottom are what you would write in
//! your crate (`cargo test --features mock --example test_with_simulator` runs them here);
//! `main` runs the same checks as a program.

use std::time::Duration;

use cometapi_runway::{
    mock::{Fault, MockServer, Outcome, Route},
    Client, Error, ImageToVideo,
};

/// Your code: one clip from one image, the output URL or a message for your user.
pub async fn make_clip(client: &Client, image: &str) -> Result<String, String> {
    let task = client.generate(&ImageToVideo::new(image).prompt_text("slow zoom")).await.map_err(|e| match e {
        Error::TaskFailed { task } => format!("rejected: {}", task.failure_code.unwrap_or_default()),
        other => format!("try again later: {other}"),
    })?;
    Ok(task.output.into_iter().next().unwrap_or_default())
}

async fn succeeds() {
    let server = MockServer::start().await;
    let client = server.client().build().unwrap();
    let url = make_clip(&client, "https://example.com/cat.jpg").await.unwrap();
    assert!(url.starts_with(server.base_url()) && url.ends_with(".mp4"), "{url}");
    // What was sent, as the service received it.
    let create = &server.requests_on(Route::Create)[0];
    assert_eq!(create.body_json().unwrap()["promptText"], "slow zoom");
    assert_eq!(server.tasks_created(), 1);
}

async fn reports_a_moderation_failure() {
    let server = MockServer::builder().outcome(Outcome::fail("SAFETY.INPUT.IMAGE", "flagged")).start().await;
    let client = server.client().build().unwrap();
    let message = make_clip(&client, "https://example.com/cat.jpg").await.unwrap_err();
    assert_eq!(message, "rejected: SAFETY.INPUT.IMAGE");
}

async fn rides_out_rate_limits_and_a_slow_visibility() {
    let server = MockServer::builder()
        .invisible_for(Duration::from_millis(300))
        .fault(Fault::RateLimit { times: 2, retry_after: None })
        .start()
        .await;
    let client = server.client().build().unwrap();
    make_clip(&client, "https://example.com/cat.jpg").await.unwrap();
    assert_eq!(server.tasks_created(), 1, "a rate-limited create never bills twice");
}

#[tokio::main]
async fn main() {
    succeeds().await;
    reports_a_moderation_failure().await;
    rides_out_rate_limits_and_a_slow_visibility().await;
    println!("3 checks passed");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn succeeds() {
        super::succeeds().await;
    }

    #[tokio::test]
    async fn reports_a_moderation_failure() {
        super::reports_a_moderation_failure().await;
    }

    #[tokio::test]
    async fn rides_out_rate_limits_and_a_slow_visibility() {
        super::rides_out_rate_limits_and_a_slow_visibility().await;
    }
}
