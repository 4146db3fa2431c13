//! Contract of one poll: both response shapes at every status, normalised into one `Task`.

mod common;

use cometapi_runway::{Error, Shape, Task, TaskStatus};
use common::{client, envelope, plain, poll_request, scripted_poll, task_not_exist, with, Reply, TASK_ID};
use httpmock::MockServer;
use serde_json::{json, Value};

/// Polls a server that answers `body` once and returns the task; the poll must be well formed.
async fn poll_once(body: Value) -> Task {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            poll_request(when, TASK_ID);
            then.status(200).header("content-type", "application/json").body(body.to_string());
        })
        .await;
    let task = client(&server).get_task(TASK_ID).await.unwrap();
    mock.assert_calls_async(1).await;
    task
}

/// Polls a server that answers `reply` and returns the error.
async fn poll_error(reply: Reply) -> Error {
    let server = MockServer::start_async().await;
    let mock = scripted_poll(&server, TASK_ID, vec![reply]).await;
    let err = client(&server).get_task(TASK_ID).await.unwrap_err();
    mock.assert_calls_async(1).await;
    err
}

#[tokio::test]
async fn plain_pending_task_is_pending() {
    let task = poll_once(plain("PENDING")).await;

    assert_eq!(task.id, TASK_ID);
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.shape, Shape::Plain);
    assert_eq!(task.created_at.as_deref(), Some("2026-05-01T12:47:47.351Z"));
    assert_eq!((task.progress, task.output.len(), task.failure.as_deref()), (None, 0, None));
    assert!(!task.is_terminal());
}

#[tokio::test]
async fn envelope_pending_task_is_pending_with_the_nested_runway_task() {
    let nested = json!({"id": TASK_ID, "status": "PENDING", "createdAt": "2026-03-13T09:52:46+08:00"});
    let task = poll_once(envelope("QUEUED", json!({}), Some(nested))).await;

    assert_eq!(task.id, TASK_ID);
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.raw_status, "PENDING");
    assert_eq!(task.shape, Shape::Envelope);
    assert_eq!(task.created_at.as_deref(), Some("2026-03-13T09:52:46+08:00"));
    assert_eq!(task.progress, Some(0.0), "the gateway's \"0%\"");
}

#[tokio::test]
async fn envelope_without_a_nested_task_maps_gateway_statuses() {
    for (gateway, want) in [
        ("NOT_START", TaskStatus::Pending),
        ("SUBMITTED", TaskStatus::Pending),
        ("QUEUED", TaskStatus::Pending),
        ("IN_PROGRESS", TaskStatus::Running),
        ("SUCCESS", TaskStatus::Succeeded),
        ("FAILURE", TaskStatus::Failed),
    ] {
        let task = poll_once(envelope(gateway, json!({}), None)).await;
        assert_eq!(task.status, want, "{gateway}");
        assert_eq!((task.id.as_str(), task.raw_status.as_str()), (TASK_ID, gateway));
        assert_eq!(task.created_at.as_deref(), Some("2026-03-13T01:52:46Z"), "from submit_time");
    }
}

#[tokio::test]
async fn envelope_with_an_incomplete_nested_task_is_read_from_the_gateway_record() {
    // Right after submission the gateway may hold only part of the upstream task.
    for nested in [json!({}), json!({"id": TASK_ID}), json!({"status": "PENDING"})] {
        let task = poll_once(envelope("IN_PROGRESS", json!({"progress": "20%"}), Some(nested.clone()))).await;
        assert_eq!((task.id.as_str(), &task.status), (TASK_ID, &TaskStatus::Running), "{nested}");
        assert_eq!(task.progress, Some(0.2), "{nested}");
    }
}

#[tokio::test]
async fn throttled_task_is_throttled_in_both_shapes() {
    let plain_task = poll_once(plain("THROTTLED")).await;
    let enveloped = poll_once(envelope("QUEUED", json!({}), Some(plain("THROTTLED")))).await;

    for task in [plain_task, enveloped] {
        assert_eq!(task.status, TaskStatus::Throttled, "{:?}", task.shape);
        assert!(!task.is_terminal());
    }
}

#[tokio::test]
async fn running_task_reports_numeric_progress() {
    let plain_task = poll_once(with(plain("RUNNING"), json!({"progress": 0.42}))).await;
    let enveloped =
        poll_once(envelope("IN_PROGRESS", json!({}), Some(with(plain("RUNNING"), json!({"progress": 0.42}))))).await;

    for task in [plain_task, enveloped] {
        assert_eq!(task.status, TaskStatus::Running, "{:?}", task.shape);
        assert_eq!(task.progress, Some(0.42), "{:?}", task.shape);
    }
}

#[tokio::test]
async fn running_task_reports_percent_string_progress() {
    let gateway_only = poll_once(envelope("IN_PROGRESS", json!({"progress": "35%"}), None)).await;
    let with_nested = poll_once(envelope("IN_PROGRESS", json!({"progress": "35%"}), Some(plain("RUNNING")))).await;
    let plain_percent = poll_once(with(plain("RUNNING"), json!({"progress": "35%"}))).await;

    for task in [gateway_only, with_nested, plain_percent] {
        assert_eq!(task.status, TaskStatus::Running, "{:?}", task.shape);
        assert_eq!(task.progress, Some(0.35), "{:?}", task.shape);
    }
}

#[tokio::test]
async fn succeeded_task_has_its_output_from_plain_output() {
    let task = poll_once(with(plain("SUCCEEDED"), json!({"output": ["https://cdn.example.com/output.mp4"]}))).await;

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(task.output, ["https://cdn.example.com/output.mp4"]);
    assert_eq!(task.progress, Some(1.0));
    assert!(task.is_terminal());
}

#[tokio::test]
async fn succeeded_task_has_its_output_from_nested_data_data_output() {
    let nested = with(plain("SUCCEEDED"), json!({"output": ["https://cdn.example.com/nested.mp4"]}));
    let task = poll_once(envelope("SUCCESS", json!({"progress": "100%"}), Some(nested))).await;

    assert_eq!((task.status, task.shape), (TaskStatus::Succeeded, Shape::Envelope));
    assert_eq!(task.output, ["https://cdn.example.com/nested.mp4"]);
    assert_eq!(task.progress, Some(1.0));
}

#[tokio::test]
async fn succeeded_task_has_its_output_from_result_url() {
    let task = poll_once(envelope("SUCCESS", json!({"result_url": "https://cdn.example.com/result.mp4"}), None)).await;

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(task.output, ["https://cdn.example.com/result.mp4"]);
}

#[tokio::test]
async fn succeeded_task_has_its_output_from_video_url() {
    let task = poll_once(envelope(
        "SUCCESS",
        json!({"video_url": "https://cdn.example.com/video.mp4"}),
        Some(plain("SUCCEEDED")),
    ))
    .await;

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(task.output, ["https://cdn.example.com/video.mp4"]);
}

#[tokio::test]
async fn failed_plain_task_carries_failure_and_failure_code() {
    let body =
        with(plain("FAILED"), json!({"failure": "The input image was flagged", "failureCode": "SAFETY.INPUT.IMAGE"}));
    let task = poll_once(body).await;

    assert_eq!(task.status, TaskStatus::Failed);
    assert_eq!(task.failure.as_deref(), Some("The input image was flagged"));
    assert_eq!(task.failure_code.as_deref(), Some("SAFETY.INPUT.IMAGE"));
    assert!(task.is_terminal());
}

#[tokio::test]
async fn failed_envelope_task_carries_fail_reason() {
    let gateway_only =
        poll_once(envelope("FAILURE", json!({"fail_reason": "upstream rejected the image"}), None)).await;
    let with_nested =
        poll_once(envelope("FAILURE", json!({"fail_reason": "upstream rejected the image"}), Some(plain("FAILED"))))
            .await;

    for task in [gateway_only, with_nested] {
        assert_eq!(task.status, TaskStatus::Failed);
        assert_eq!(task.failure.as_deref(), Some("upstream rejected the image"));
    }
}

#[tokio::test]
async fn failed_nested_task_keeps_its_own_failure_and_code() {
    let nested = with(plain("FAILED"), json!({"failure": "bad input", "failureCode": "INPUT.INVALID"}));
    let task = poll_once(envelope("FAILURE", json!({"fail_reason": "gateway text"}), Some(nested))).await;

    assert_eq!(task.failure.as_deref(), Some("bad input"));
    assert_eq!(task.failure_code.as_deref(), Some("INPUT.INVALID"));
}

#[tokio::test]
async fn cancelled_task_is_cancelled_in_both_shapes() {
    let plain_task = poll_once(plain("CANCELLED")).await;
    let enveloped = poll_once(envelope("FAILURE", json!({}), Some(plain("CANCELLED")))).await;

    for task in [plain_task, enveloped] {
        assert_eq!(task.status, TaskStatus::Cancelled, "{:?}", task.shape);
        assert!(task.is_terminal());
    }
}

#[tokio::test]
async fn nested_runway_status_wins_over_the_gateway_status() {
    let task = poll_once(envelope("SUCCESS", json!({}), Some(with(plain("RUNNING"), json!({"progress": 0.5}))))).await;

    assert_eq!((task.status, task.progress), (TaskStatus::Running, Some(0.5)));
}

#[tokio::test]
async fn unknown_status_is_kept_as_unknown_in_both_shapes() {
    let plain_task = poll_once(plain("REVIEWING")).await;
    let gateway_only = poll_once(envelope("UNKNOWN", json!({}), None)).await;

    assert_eq!(plain_task.status, TaskStatus::Unknown("REVIEWING".into()));
    assert_eq!(gateway_only.status, TaskStatus::Unknown("UNKNOWN".into()));
    assert!(!plain_task.is_terminal() && !gateway_only.is_terminal());
}

#[tokio::test]
async fn task_not_exist_gateway_body_is_flagged_as_not_visible_yet() {
    let err = poll_error(task_not_exist()).await;

    assert!(err.is_task_not_exist(), "{err:?}");
    assert_eq!((err.status(), err.code()), (Some(400), Some("task_not_exist")));
}

#[tokio::test]
async fn task_not_exist_in_error_code_is_flagged_as_not_visible_yet() {
    let body = json!({"error": {"code": "task_not_exist", "message": "task not found", "type": "comet_api_error"}});
    let err = poll_error(Reply::json(404, body)).await;

    assert!(err.is_task_not_exist(), "{err:?}");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn task_not_exist_envelope_with_status_200_is_flagged_as_not_visible_yet() {
    let err = poll_error(Reply::ok(json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}))).await;

    assert!(err.is_task_not_exist(), "{err:?}");
}

#[tokio::test]
async fn other_4xx_codes_are_not_task_not_exist() {
    let err = poll_error(Reply::json(400, json!({"code": "invalid_request", "message": "bad id", "data": null}))).await;

    assert!(!err.is_task_not_exist(), "{err:?}");
    assert_eq!(err.code(), Some("invalid_request"));
}

#[tokio::test]
async fn garbage_200_body_is_a_decode_error_with_a_snippet() {
    let err = poll_error(Reply::raw(200, "application/json", "{\"not\": \"a task\"")).await;

    let Error::Decode { body, .. } = &err else { panic!("{err:?}") };
    assert!(body.contains("not"), "{body}");
}

#[tokio::test]
async fn an_id_that_is_not_a_task_id_is_refused_before_sending() {
    let server = MockServer::start_async().await;
    let any = common::any_request(&server).await;

    for bad in ["", "  ", "../image_to_video", "a?b=c", "a#b", ".", ".."] {
        let err = client(&server).get_task(bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { field: "id", .. }), "{bad:?}: {err:?}");
    }
    any.assert_calls_async(0).await;
}
