//! The wait's edges: a deadline that falls between two polls, and settings at the far ends of
//! `Duration` that a user could reasonably pick. Paused tokio time against the simulator
//! (whose timelines follow that clock); the CLI test runs the binary in real time.

use std::time::Duration;

use cometapi_runway::{
    mock::{MockServer, Route},
    Client, Error, ImageToVideo, PollPolicy, TaskStatus, WaitOptions,
};

fn request() -> ImageToVideo {
    ImageToVideo::new("https://example.com/cat.jpg")
}

#[tokio::test(start_paused = true)]
async fn a_task_that_finished_between_the_last_poll_and_the_deadline_is_seen_at_the_deadline() {
    // Done 9 s after creation; polls every 6 s; timeout 10 s. The poll at 12 s would come too
    // late: the wait polls at 10 s instead, and sees the video (already paid for).
    let server = MockServer::builder()
        .not_found_polls(0)
        .pending_for(Duration::from_secs(1))
        .running_for(Duration::from_secs(8))
        .start()
        .await;
    let client = server.client().build().unwrap();
    let options =
        WaitOptions::default().poll_policy(PollPolicy::fixed(Duration::from_secs(6))).timeout(Duration::from_secs(10));
    let id = client.create(&request()).await.unwrap();

    let task = client.wait_with(&id, &options).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(server.requests_on(Route::Poll).len(), 2, "at 6 s, then at the deadline");
}

#[tokio::test(start_paused = true)]
async fn a_task_still_running_at_the_deadline_times_out_after_one_last_look() {
    let server = MockServer::builder().not_found_polls(0).running_for(Duration::from_secs(60)).start().await;
    let client = server.client().build().unwrap();
    let options =
        WaitOptions::default().poll_policy(PollPolicy::fixed(Duration::from_secs(6))).timeout(Duration::from_secs(10));
    let id = client.create(&request()).await.unwrap();
    let started = tokio::time::Instant::now();

    let err = client.wait_with(&id, &options).await.unwrap_err();

    let Error::TimedOut { last: Some(last), waited, .. } = &err else { panic!("{err:?}") };
    assert_eq!(last.status, TaskStatus::Running, "the last look is the last task seen");
    assert!(*waited >= Duration::from_secs(10) && started.elapsed() < Duration::from_secs(11), "{waited:?}");
    assert_eq!(server.requests_on(Route::Poll).len(), 2, "at 6 s, then at the deadline, and no more");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_of_duration_max_means_no_timeout() {
    let server = MockServer::builder().running_for(Duration::from_secs(30)).start().await;
    let client = server.client().build().unwrap();
    let options = WaitOptions::default().timeout(Duration::MAX);

    let task = client.generate_with(&request(), &options).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_doubling_backoff_keeps_polling_past_its_sixty_sixth_poll() {
    // About 5 minutes in at 5 s a poll: 2^65 s used to overflow the pause.
    let server = MockServer::builder().not_found_polls(0).running_for(Duration::from_secs(400)).start().await;
    let client = server.client().build().unwrap();
    let policy = PollPolicy::default().backoff(Duration::from_secs(1), 2.0, Duration::from_secs(5)).eta(false);
    let options = WaitOptions::default().poll_policy(policy);

    let task = client.generate_with(&request(), &options).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert!(server.requests_on(Route::Poll).len() > 66);
}

#[tokio::test]
async fn client_timeouts_of_duration_max_build_a_working_client() {
    let server = MockServer::builder().not_found_polls(0).start().await;
    let client = Client::builder()
        .api_key(server.api_key())
        .base_url(server.base_url())
        .request_timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .build()
        .unwrap();
    let id = client.create(&request()).await.unwrap();

    assert_eq!(client.get_task(&id).await.unwrap().id, id);
}

#[cfg(feature = "cli")]
#[test]
fn the_cli_takes_a_timeout_past_any_clock() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::builder().pending_for(Duration::from_millis(20)).start());
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cometapi-runway"))
        .current_dir(dir.path())
        .env_clear()
        .args(["--base-url", server.base_url(), "--api-key", server.api_key(), "--poll-interval", "10ms"])
        .args(["generate", "--image", "https://example.com/cat.jpg", "--no-download", "--timeout", "1e19"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
