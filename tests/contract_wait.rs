//! Contract of waiting: polls until terminal, rides out `task_not_exist` for a grace period,
//! times out with the last task seen, reports progress, and stops polling when dropped.
//!
//! These run in real (millisecond) time: the polls go over a real loopback socket, where
//! paused tokio time would fire client timeouts early.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use cometapi_runway::{Client, Error, ImageToVideo, RetryPolicy, Task, TaskStatus};
use common::{
    api_request, client, envelope, fast_wait, plain, scripted_poll, task_not_exist, with, Reply, CREATE_PATH, KEY,
    TASK_ID,
};
use futures_util::StreamExt;
use httpmock::MockServer;
use serde_json::json;

fn running(progress: f64) -> Reply {
    Reply::ok(with(plain("RUNNING"), json!({"progress": progress})))
}

fn succeeded() -> Reply {
    Reply::ok(with(plain("SUCCEEDED"), json!({"output": ["https://cdn.example.com/output.mp4"]})))
}

/// Collects what a wait's `on_update` callback sees.
fn recorder() -> (Arc<Mutex<Vec<Task>>>, impl Fn(&Task) + Send + Sync + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (seen, move |task: &Task| sink.lock().unwrap().push(task.clone()))
}

#[tokio::test]
async fn wait_polls_through_pending_throttled_and_running_and_returns_the_succeeded_task() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(
        &server,
        TASK_ID,
        vec![
            Reply::ok(plain("PENDING")),
            Reply::ok(plain("THROTTLED")),
            Reply::ok(envelope("IN_PROGRESS", json!({"progress": "35%"}), None)),
            succeeded(),
        ],
    )
    .await;

    let task = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(task.output, ["https://cdn.example.com/output.mp4"]);
    poll.assert_calls_async(4).await;
}

#[tokio::test]
async fn wait_uses_the_clients_default_wait_options() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![Reply::ok(plain("RUNNING")), succeeded()]).await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .retry_policy(RetryPolicy::none())
        .wait_options(fast_wait())
        .build()
        .unwrap();

    let task = tokio::time::timeout(Duration::from_secs(5), client.wait(TASK_ID)).await.unwrap().unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    poll.assert_calls_async(2).await;
}

#[tokio::test]
async fn generate_creates_the_task_then_waits_for_it() {
    let server = MockServer::start_async().await;
    let create = server
        .mock_async(|when, then| {
            api_request(when, "2024-11-06").method("POST").path(CREATE_PATH).json_body(json!({
                "promptImage": "https://example.com/cat.jpg", "model": "gen3a_turbo"
            }));
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;
    let poll = scripted_poll(&server, TASK_ID, vec![running(0.5), succeeded()]).await;

    let task =
        client(&server).generate_with(&ImageToVideo::new("https://example.com/cat.jpg"), &fast_wait()).await.unwrap();

    assert_eq!((task.id.as_str(), task.status), (TASK_ID, TaskStatus::Succeeded));
    create.assert_calls_async(1).await;
    poll.assert_calls_async(2).await;
}

#[tokio::test]
async fn failed_task_ends_the_wait_with_task_failed_carrying_text_and_code() {
    let server = MockServer::start_async().await;
    let failed =
        with(plain("FAILED"), json!({"failure": "The input image was flagged", "failureCode": "SAFETY.INPUT.IMAGE"}));
    let poll = scripted_poll(&server, TASK_ID, vec![running(0.2), Reply::ok(failed)]).await;

    let err = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap_err();

    let Error::TaskFailed { task } = &err else { panic!("{err:?}") };
    assert_eq!(task.failure.as_deref(), Some("The input image was flagged"));
    assert_eq!(err.code(), Some("SAFETY.INPUT.IMAGE"));
    assert_eq!(err.to_string(), format!("task {TASK_ID} failed: The input image was flagged (SAFETY.INPUT.IMAGE)"));
    poll.assert_calls_async(2).await;
}

#[tokio::test]
async fn failed_envelope_ends_the_wait_with_task_failed_carrying_fail_reason() {
    let server = MockServer::start_async().await;
    let failed = envelope("FAILURE", json!({"fail_reason": "upstream rejected the image"}), None);
    let poll = scripted_poll(&server, TASK_ID, vec![Reply::ok(failed)]).await;

    let err = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap_err();

    let Error::TaskFailed { task } = &err else { panic!("{err:?}") };
    assert_eq!(task.failure.as_deref(), Some("upstream rejected the image"));
    poll.assert_calls_async(1).await;
}

#[tokio::test]
async fn cancelled_task_ends_the_wait_with_task_cancelled() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![Reply::ok(plain("PENDING")), Reply::ok(plain("CANCELLED"))]).await;

    let err = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap_err();

    let Error::TaskCancelled { task } = &err else { panic!("{err:?}") };
    assert_eq!((task.id.as_str(), &task.status), (TASK_ID, &TaskStatus::Cancelled));
    poll.assert_calls_async(2).await;
}

#[tokio::test]
async fn unknown_status_keeps_waiting() {
    let server = MockServer::start_async().await;
    let reviewing = Reply::ok(plain("REVIEWING"));
    let poll = scripted_poll(&server, TASK_ID, vec![reviewing.clone(), reviewing, succeeded()]).await;
    let (seen, on_update) = recorder();

    let task = client(&server).wait_with(TASK_ID, &fast_wait().on_update(on_update)).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    let statuses: Vec<TaskStatus> = seen.lock().unwrap().iter().map(|t| t.status.clone()).collect();
    assert_eq!(
        statuses,
        [TaskStatus::Unknown("REVIEWING".into()), TaskStatus::Unknown("REVIEWING".into()), TaskStatus::Succeeded]
    );
    poll.assert_calls_async(3).await;
}

#[tokio::test]
async fn task_not_exist_is_retried_until_visible() {
    let server = MockServer::start_async().await;
    let poll =
        scripted_poll(&server, TASK_ID, vec![task_not_exist(), task_not_exist(), running(0.5), succeeded()]).await;

    let task = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    poll.assert_calls_async(4).await;
}

#[tokio::test]
async fn task_not_exist_in_error_code_is_retried_until_visible() {
    let server = MockServer::start_async().await;
    let not_yet =
        Reply::json(404, json!({"error": {"code": "task_not_exist", "message": "task not found", "type": "x"}}));
    let poll = scripted_poll(&server, TASK_ID, vec![not_yet, succeeded()]).await;

    let task = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    poll.assert_calls_async(2).await;
}

#[tokio::test]
async fn task_not_exist_past_the_grace_period_is_task_not_found() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![task_not_exist()]).await;
    let grace = Duration::from_millis(60);

    let err = client(&server).wait_with(TASK_ID, &fast_wait().not_found_grace(grace)).await.unwrap_err();

    let Error::TaskNotFound { id, waited } = &err else { panic!("{err:?}") };
    assert_eq!(id, TASK_ID);
    assert!(*waited >= grace && *waited < Duration::from_secs(2), "{waited:?}");
    // Polled on its 5 ms schedule through the grace period, then stopped.
    let polls = poll.calls_async().await;
    assert!((2..=20).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn wait_times_out_with_the_last_task_seen() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![running(0.3)]).await;
    let timeout = Duration::from_millis(250);

    let err = client(&server).wait_with(TASK_ID, &fast_wait().timeout(timeout)).await.unwrap_err();

    let Error::TimedOut { id, waited, last } = &err else { panic!("{err:?}") };
    assert_eq!(id, TASK_ID);
    assert!(*waited >= timeout && *waited < Duration::from_secs(2), "{waited:?}");
    let last = last.as_deref().expect("the running task was seen");
    assert_eq!((&last.status, last.progress), (&TaskStatus::Running, Some(0.3)));
    assert!(poll.calls_async().await >= 2);
}

#[tokio::test]
async fn wait_times_out_without_a_last_task_when_none_was_seen() {
    let server = MockServer::start_async().await;
    let _poll = scripted_poll(&server, TASK_ID, vec![task_not_exist()]).await;
    let options = fast_wait().timeout(Duration::from_millis(60)).not_found_grace(Duration::from_secs(30));

    let err = client(&server).wait_with(TASK_ID, &options).await.unwrap_err();

    assert!(matches!(&err, Error::TimedOut { last: None, .. }), "{err:?}");
}

#[tokio::test]
async fn a_failed_poll_is_tolerated_and_waiting_continues() {
    let server = MockServer::start_async().await;
    let outage = Reply::raw(503, "text/html", "<html>503 Service Unavailable</html>");
    let poll = scripted_poll(&server, TASK_ID, vec![outage, succeeded()]).await;

    let task = client(&server).wait_with(TASK_ID, &fast_wait()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    poll.assert_calls_async(2).await;
}

#[tokio::test]
async fn too_many_failed_polls_end_the_wait_with_the_error() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![Reply::raw(503, "text/plain", "")]).await;

    let err = client(&server).wait_with(TASK_ID, &fast_wait().max_poll_errors(2)).await.unwrap_err();

    assert_eq!(err.status(), Some(503));
    poll.assert_calls_async(3).await;
}

#[tokio::test]
async fn on_update_sees_rising_progress() {
    let server = MockServer::start_async().await;
    let _poll = scripted_poll(&server, TASK_ID, vec![running(0.1), running(0.5), running(0.9), succeeded()]).await;
    let (seen, on_update) = recorder();

    client(&server).wait_with(TASK_ID, &fast_wait().on_update(on_update)).await.unwrap();

    let progress: Vec<Option<f64>> = seen.lock().unwrap().iter().map(|t| t.progress).collect();
    assert_eq!(progress, [Some(0.1), Some(0.5), Some(0.9), Some(1.0)]);
}

#[tokio::test]
async fn updates_stream_yields_every_task_and_ends_after_the_terminal_one() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![running(0.1), running(0.5), running(0.9), succeeded()]).await;

    let updates: Vec<Task> =
        client(&server).updates(TASK_ID, fast_wait()).map(|update| update.unwrap()).collect().await;

    let progress: Vec<Option<f64>> = updates.iter().map(|t| t.progress).collect();
    assert_eq!(progress, [Some(0.1), Some(0.5), Some(0.9), Some(1.0)]);
    assert_eq!(updates.last().unwrap().status, TaskStatus::Succeeded);
    poll.assert_calls_async(4).await;
}

#[tokio::test]
async fn updates_stream_ends_with_the_error_that_ends_the_wait() {
    let server = MockServer::start_async().await;
    let _poll = scripted_poll(&server, TASK_ID, vec![running(0.5), Reply::ok(plain("CANCELLED"))]).await;

    let updates: Vec<Result<Task, Error>> = client(&server).updates(TASK_ID, fast_wait()).collect().await;

    assert_eq!(updates.len(), 2);
    assert!(updates[0].is_ok());
    assert!(matches!(updates[1], Err(Error::TaskCancelled { .. })), "{:?}", updates[1]);
}

/// Polls seen now, and again after a pause long enough for dozens of 5 ms polls.
async fn polls_before_and_after_a_pause(poll: &httpmock::Mock<'_>) -> (usize, usize) {
    // Let a request that was already on the wire when the future was dropped arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = poll.calls_async().await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    (before, poll.calls_async().await)
}

#[tokio::test]
async fn dropping_the_wait_future_stops_polling() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![running(0.5)]).await;
    let client = client(&server);

    let cut_short = tokio::time::timeout(Duration::from_millis(200), client.wait_with(TASK_ID, &fast_wait())).await;
    assert!(cut_short.is_err(), "the task never finishes, so the wait was still running");

    let (before, after) = polls_before_and_after_a_pause(&poll).await;
    assert!(before >= 2, "the wait was polling: {before} polls");
    assert_eq!(before, after, "no poll after the future was dropped");
}

#[tokio::test]
async fn dropping_the_updates_stream_stops_polling() {
    let server = MockServer::start_async().await;
    let poll = scripted_poll(&server, TASK_ID, vec![running(0.5)]).await;
    let client = client(&server);

    let mut updates = Box::pin(client.updates(TASK_ID, fast_wait()));
    for _ in 0..3 {
        updates.next().await.unwrap().unwrap();
    }
    drop(updates);

    let (before, after) = polls_before_and_after_a_pause(&poll).await;
    assert_eq!(before, 3);
    assert_eq!(before, after, "no poll after the stream was dropped");
}
