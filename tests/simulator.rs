//! The built-in simulator (`cometapi_runway::mock`): every scenario and fault behaves as its
//! documentation says, seen both on the wire (raw HTTP with reqwest) and through the library's
//! client; and the library's core behaviours hold against the simulator exactly as they do
//! against an httpmock script of the service (the simulator is only useful if it is faithful).

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use cometapi_runway::{
    mock::{Fault, MockServer, Outcome, RecordedRequest, ResponseShape, Route, Scenario, SAMPLE_MP4},
    Client, Error, ImageToVideo, Shape, Task, TaskStatus,
};
use serde_json::{json, Value};

const IMAGE: &str = "https://example.com/cat.jpg";
const VERSION: &str = "2024-11-06";

// ------------------------------------------------------------------------------------ helpers

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn create_url(server: &MockServer) -> String {
    format!("{}/runwayml/v1/image_to_video", server.base_url())
}

fn poll_url(server: &MockServer, id: &str) -> String {
    format!("{}/runwayml/v1/tasks/{id}", server.base_url())
}

/// A well-formed create call (key, version, body), as raw HTTP.
async fn raw_create(server: &MockServer, body: Value) -> reqwest::Response {
    http()
        .post(create_url(server))
        .bearer_auth(server.api_key())
        .header("X-Runway-Version", VERSION)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates a task over raw HTTP and returns its id.
async fn raw_create_ok(server: &MockServer) -> String {
    let response = raw_create(server, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().expect("an id").to_string()
}

/// A well-formed poll, as raw HTTP: (status, JSON body).
async fn raw_poll(server: &MockServer, id: &str) -> (u16, Value) {
    let response = http().get(poll_url(server, id)).bearer_auth(server.api_key()).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// The Runway status in either shape.
fn runway_status(body: &Value) -> &str {
    if body.get("code").is_some() {
        body["data"]["data"]["status"].as_str().unwrap()
    } else {
        body["status"].as_str().unwrap()
    }
}

fn is_envelope(body: &Value) -> bool {
    body.get("code").is_some() && body.get("data").is_some()
}

fn is_uuid_like(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

fn task_not_exist_body() -> Value {
    json!({"code": "task_not_exist", "message": "task_not_exist", "data": null})
}

fn fast(server: &MockServer) -> Client {
    server.client().build().unwrap()
}

fn request() -> ImageToVideo {
    ImageToVideo::new(IMAGE).prompt_text("the cat yawns")
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

// ------------------------------------------------------------------------------- create route

#[tokio::test]
async fn create_answers_an_id_and_records_the_request() {
    let server = MockServer::start().await;
    let body = json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": "a cat", "ratio": "960:960",
                      "duration": 10, "seed": 999_999_999, "watermark": true});
    let response = raw_create(&server, body.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let answer: Value = response.json().await.unwrap();
    let id = answer["id"].as_str().unwrap();
    assert!(is_uuid_like(id), "{id}");
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    assert_eq!(server.tasks_created(), 1);
    assert_eq!(server.task_ids(), [id]);

    let log = server.requests();
    assert_eq!(log.len(), 1);
    let r = &log[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str(), r.route),
        ("POST", "/runwayml/v1/image_to_video", Some(Route::Create))
    );
    assert_eq!(r.header("authorization"), Some("Bearer mock-key"));
    assert_eq!(r.header("x-runway-version"), Some(VERSION));
    assert_eq!(r.body_json(), Some(body));
}

#[tokio::test]
async fn create_checks_the_key_with_the_gateway_error_body() {
    let server = MockServer::start().await;
    let body = json!({"promptImage": IMAGE, "model": "gen3a_turbo"});
    for auth in [None, Some("Bearer wrong-key"), Some("mock-key"), Some("Basic bW9jay1rZXk=")] {
        let mut req = http().post(create_url(&server)).header("X-Runway-Version", VERSION).json(&body);
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let err: Value = response.json().await.unwrap();
        assert_eq!(err["error"]["code"], "invalid_api_key", "{err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
        assert!(err["error"]["type"].is_string(), "{err}");
    }
    assert_eq!(server.tasks_created(), 0);
    assert_eq!(server.requests().len(), 4, "refused requests are recorded too");

    // Through the library: a wrong key is an API error with the code, not retried.
    let client = server.client().api_key("not-the-key").build().unwrap();
    let err = client.create(&request()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(401), Some("invalid_api_key")), "{err}");
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn create_requires_the_runway_version_header() {
    let server = MockServer::start().await;
    let response = http()
        .post(create_url(&server))
        .bearer_auth("mock-key")
        .json(&json!({"promptImage": IMAGE, "model": "gen3a_turbo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let err: Value = response.json().await.unwrap();
    assert!(err["error"].as_str().unwrap().contains("X-Runway-Version"), "{err}");

    for version in ["yesterday", "2024-13-06", "2024-11-00", "2024/11/06", " "] {
        let response = raw_create_with_version(&server, version).await;
        assert_eq!(response.status(), 400, "{version:?}");
        let err: Value = response.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("X-Runway-Version"), "{err}");
    }
    assert_eq!(server.tasks_created(), 0);
    // What both official SDKs send.
    assert_eq!(raw_create_with_version(&server, "2024-11-06").await.status(), 200);

    // The library always sends it.
    fast(&server).create(&request()).await.unwrap();
    assert_eq!(server.tasks_created(), 2);
}

#[tokio::test]
async fn create_requires_a_json_content_type() {
    let server = MockServer::start().await;
    let body = json!({"promptImage": IMAGE, "model": "gen3a_turbo"}).to_string();
    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut request = http()
            .post(create_url(&server))
            .bearer_auth(server.api_key())
            .header("X-Runway-Version", VERSION)
            .body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{content_type:?}");
        let err: Value = response.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains("application/json"), "{err}");
    }
    assert_eq!(server.tasks_created(), 0);

    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let response = http()
            .post(create_url(&server))
            .bearer_auth(server.api_key())
            .header("X-Runway-Version", VERSION)
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{content_type}");
    }
}

#[tokio::test]
async fn create_checks_the_key_before_the_version_and_content_type() {
    let server = MockServer::start().await;
    let response = http().post(create_url(&server)).body("x").send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "invalid_api_key");
}

async fn raw_create_with_version(server: &MockServer, version: &str) -> reqwest::Response {
    http()
        .post(create_url(server))
        .bearer_auth(server.api_key())
        .header("X-Runway-Version", version)
        .json(&json!({"promptImage": IMAGE, "model": "gen3a_turbo"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn create_validates_the_body_like_runway() {
    let server = MockServer::start().await;
    let long = "a".repeat(512);
    let too_long = "a".repeat(513);
    // 256 emoji are 512 UTF-16 units; one more is too many although it is only 257 characters.
    let emoji = "😺".repeat(256);
    let emoji_too_long = "😺".repeat(257);
    let bad = [
        (json!({"model": "gen3a_turbo"}), "promptImage"),
        (json!({"promptImage": IMAGE}), "model"),
        (json!({"promptImage": 7, "model": "gen3a_turbo"}), "promptImage"),
        (json!({"promptImage": "http://example.com/cat.jpg", "model": "gen3a_turbo"}), "promptImage"),
        (json!({"promptImage": "not a url", "model": "gen3a_turbo"}), "promptImage"),
        (json!({"promptImage": "data:image/png;base64,", "model": "gen3a_turbo"}), "promptImage"),
        (json!({"promptImage": IMAGE, "model": ""}), "model"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "ratio": "1:1"}), "ratio"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "ratio": "1280x720"}), "ratio"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "duration": 7}), "duration"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "duration": "5"}), "duration"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "seed": -1}), "seed"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "seed": 1_000_000_000u64}), "seed"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "seed": 1.5}), "seed"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": ""}), "promptText"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": too_long}), "promptText"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": emoji_too_long}), "promptText"),
        (json!({"promptImage": IMAGE, "model": "gen3a_turbo", "watermark": "yes"}), "watermark"),
        (json!([1, 2]), "object"),
    ];
    for (body, field) in bad {
        let response = raw_create(&server, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let err: Value = response.json().await.unwrap();
        let text = err["error"].as_str().unwrap_or_else(|| panic!("{{\"error\": text}} expected, got {err}"));
        assert!(text.contains(field), "{body} -> {text}");
    }
    let response = http()
        .post(create_url(&server))
        .bearer_auth("mock-key")
        .header("X-Runway-Version", VERSION)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(server.tasks_created(), 0);

    let good = [
        json!({"promptImage": IMAGE, "model": "gen3a_turbo"}),
        json!({"promptImage": "data:image/png;base64,iVBORw0KGgo=", "model": "gen3a_turbo"}),
        json!({"promptImage": [{"uri": IMAGE, "position": "first"}], "model": "gen4_turbo"}),
        json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": long, "seed": 0, "duration": 5,
               "ratio": "768:1280", "watermark": false}),
        json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": emoji}),
    ];
    for body in good {
        let response = raw_create(&server, body.clone()).await;
        assert_eq!(response.status(), 200, "{body}: {}", response.text().await.unwrap());
    }
    // A model the catalogue does not know takes every ratio of the spec.
    for ratio in cometapi_runway::Ratio::ALL {
        let response =
            raw_create(&server, json!({"promptImage": IMAGE, "model": "gen9_future", "ratio": ratio.to_string()}))
                .await;
        assert_eq!(response.status(), 200, "{ratio}");
    }
    assert_eq!(server.tasks_created(), 5 + cometapi_runway::Ratio::ALL.len());
}

#[tokio::test]
async fn create_applies_the_catalogue_to_known_models_and_names_field_and_model() {
    let server = MockServer::start().await;
    let bad = [
        (
            json!({"promptImage": IMAGE, "model": "veo3.1", "duration": 5}),
            "invalid duration 5 for veo3.1: must be 4, 6 or 8",
        ),
        (json!({"promptImage": IMAGE, "model": "gen4.5", "duration": 5}), "invalid promptText (missing) for gen4.5"),
        (
            json!({"promptImage": IMAGE, "model": "gen4_turbo", "ratio": "1920:1080"}),
            "invalid ratio \"1920:1080\" for gen4_turbo",
        ),
        (json!({"promptImage": IMAGE, "model": "veo3.1", "watermark": true}), "veo3.1 does not take watermark"),
        (
            json!({"promptImage": [{"uri": IMAGE, "position": "last"}], "model": "veo3.1"}),
            "invalid promptImage (keyframes [last]) for veo3.1",
        ),
    ];
    for (body, message) in &bad {
        let response = raw_create(&server, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let err: Value = response.json().await.unwrap();
        assert!(err["error"].as_str().unwrap().contains(message), "{body} -> {err}");
    }
    assert_eq!(server.tasks_created(), 0);
    // An unknown model is accepted with an unusual duration.
    let response = raw_create(&server, json!({"promptImage": IMAGE, "model": "gen9_future", "duration": 3})).await;
    assert_eq!(response.status(), 200);

    // With the checks off, only the field rules apply.
    let relaxed = MockServer::builder().check_models(false).start().await;
    for (body, _) in bad {
        assert_eq!(raw_create(&relaxed, body.clone()).await.status(), 200, "{body}");
    }
    let response = raw_create(&relaxed, json!({"promptImage": IMAGE, "model": "veo3.1", "seed": -1})).await;
    assert_eq!(response.status(), 400);
}

// --------------------------------------------------------------------------------- poll route

#[tokio::test]
async fn poll_checks_the_key_but_not_the_version() {
    let server = MockServer::builder().not_found_polls(0).shape(ResponseShape::Plain).start().await;
    let id = raw_create_ok(&server).await;

    let response = http().get(poll_url(&server, &id)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], "invalid_api_key");
    let response = http().get(poll_url(&server, &id)).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(response.status(), 401);

    // No X-Runway-Version: still fine.
    let (status, body) = raw_poll(&server, &id).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(id.as_str())));
    let polls = server.requests_on(Route::Poll);
    assert_eq!(polls.len(), 3);
    assert!(polls[2].header("x-runway-version").is_none());
}

#[tokio::test]
async fn unknown_ids_and_the_first_polls_answer_task_not_exist() {
    let server = MockServer::builder().not_found_polls(3).start().await;
    let (status, body) = raw_poll(&server, "00000000-0000-4000-8000-000000000000").await;
    assert_eq!((status, body), (400, task_not_exist_body()));

    let id = raw_create_ok(&server).await;
    for _ in 0..3 {
        assert_eq!(raw_poll(&server, &id).await, (400, task_not_exist_body()));
    }
    let (status, _) = raw_poll(&server, &id).await;
    assert_eq!(status, 200);

    // Through the library: get_task sees the typed not-found, wait rides it out.
    let server = MockServer::builder().not_found_polls(2).start().await;
    let client = fast(&server);
    let id = client.create(&request()).await.unwrap();
    let err = client.get_task(&id).await.unwrap_err();
    assert!(err.is_task_not_exist(), "{err}");
    let task = client.wait(&id).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    let answers = server.requests_on(Route::Poll).len();
    assert!(answers >= 3, "{answers}");
}

#[tokio::test(start_paused = true)]
async fn a_fresh_task_is_invisible_for_a_window_after_creation_however_many_polls() {
    let server =
        MockServer::builder().invisible_for(Duration::from_millis(1000)).shape(ResponseShape::Plain).start().await;
    let id = raw_create_ok(&server).await;
    for _ in 0..5 {
        assert_eq!(raw_poll(&server, &id).await, (400, task_not_exist_body()));
        tokio::time::sleep(Duration::from_millis(150)).await; // 750 ms in all
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (status, body) = raw_poll(&server, &id).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(id.as_str())));
}

#[tokio::test(start_paused = true)]
async fn a_late_first_poll_sees_the_task_at_once() {
    // The official SDKs poll first after about 6 s: by then the real route knows the task.
    let server = MockServer::builder().shape(ResponseShape::Plain).start().await;
    let id = raw_create_ok(&server).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (status, body) = raw_poll(&server, &id).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCEEDED")));
}

#[tokio::test]
async fn count_and_window_setters_replace_each_other() {
    let s = Scenario::default().not_found_polls(3);
    assert_eq!((s.not_found_polls, s.invisible_for), (3, Duration::ZERO));
    let s = s.invisible_for(Duration::from_millis(200));
    assert_eq!((s.not_found_polls, s.invisible_for), (0, Duration::from_millis(200)));
}

#[tokio::test(start_paused = true)]
async fn plain_timeline_pending_running_with_rising_progress_then_succeeded() {
    let server = MockServer::builder()
        .not_found_polls(1)
        .pending_for(Duration::from_millis(300))
        .running_for(Duration::from_millis(600))
        .shape(ResponseShape::Plain)
        .start()
        .await;
    let start = tokio::time::Instant::now(); // paused: the timeline is exact
    let id = raw_create_ok(&server).await;
    assert_eq!(raw_poll(&server, &id).await.0, 400);

    let (_, pending) = raw_poll(&server, &id).await;
    assert_eq!(pending["status"], "PENDING", "{pending}");
    assert_eq!(pending["id"], id.as_str());
    assert!(pending["createdAt"].as_str().unwrap().ends_with('Z'), "{pending}");
    assert!(pending.get("progress").is_none() && pending.get("output").is_none(), "{pending}");

    tokio::time::sleep_until(start + Duration::from_millis(450)).await;
    let (_, first) = raw_poll(&server, &id).await;
    tokio::time::sleep_until(start + Duration::from_millis(750)).await;
    let (_, second) = raw_poll(&server, &id).await;
    for running in [&first, &second] {
        assert_eq!(running["status"], "RUNNING", "{running}");
    }
    let (p1, p2) = (first["progress"].as_f64().unwrap(), second["progress"].as_f64().unwrap());
    assert_eq!((p1, p2), (0.25, 0.75), "progress is the share of running_for elapsed");

    tokio::time::sleep_until(start + Duration::from_millis(1000)).await;
    let (_, done) = raw_poll(&server, &id).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["output"], json!([format!("{}/files/{id}.mp4", server.base_url())]));
    assert_eq!(done["output"][0], server.output_url(&id).as_str());
    // The spec's own type reads it.
    let typed: cometapi_runway::types::RunwayTask = serde_json::from_value(done).unwrap();
    assert_eq!(typed.status, "SUCCEEDED");
}

#[tokio::test(start_paused = true)]
async fn envelope_timeline_uses_gateway_statuses_percent_strings_and_unix_times() {
    let server = MockServer::builder()
        .not_found_polls(0)
        .pending_for(Duration::from_millis(300))
        .running_for(Duration::from_millis(600))
        .shape(ResponseShape::Envelope)
        .start()
        .await;
    let start = tokio::time::Instant::now(); // paused: the timeline is exact
    let id = raw_create_ok(&server).await;
    let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    let (status, queued) = raw_poll(&server, &id).await;
    assert_eq!(status, 200);
    assert_eq!((queued["code"].as_str(), queued["message"].as_str()), (Some("success"), Some("")));
    let data = &queued["data"];
    assert_eq!(data["task_id"], id.as_str());
    assert_eq!(data["action"], "IMAGE_TO_VIDEO");
    assert_eq!(data["status"], "QUEUED");
    assert_eq!(data["progress"], "0%");
    assert!((data["submit_time"].as_i64().unwrap() - now_unix).abs() <= 2, "{data}");
    assert_eq!((data["start_time"].as_i64(), data["finish_time"].as_i64()), (Some(0), Some(0)));
    assert_eq!(data["data"]["status"], "PENDING");
    assert_eq!(data["data"]["id"], id.as_str());

    tokio::time::sleep_until(start + Duration::from_millis(600)).await;
    let (_, running) = raw_poll(&server, &id).await;
    let data = &running["data"];
    assert_eq!(data["status"], "IN_PROGRESS", "{running}");
    let pct = data["progress"].as_str().unwrap();
    let pct: u32 = pct.strip_suffix('%').unwrap().parse().unwrap();
    assert_eq!(pct, 50);
    assert_eq!(data["data"]["progress"], 0.5);
    assert!(data["start_time"].as_i64().unwrap() >= data["submit_time"].as_i64().unwrap());
    assert_eq!(data["finish_time"], 0);
    assert_eq!(data["data"]["status"], "RUNNING");

    tokio::time::sleep_until(start + Duration::from_millis(1000)).await;
    let (_, done) = raw_poll(&server, &id).await;
    let data = &done["data"];
    assert_eq!((data["status"].as_str(), data["progress"].as_str()), (Some("SUCCESS"), Some("100%")), "{done}");
    assert!(data["finish_time"].as_i64().unwrap() >= data["start_time"].as_i64().unwrap());
    assert!(data["finish_time"].as_i64().unwrap() > 0);
    assert_eq!(data["data"]["status"], "SUCCEEDED");
    assert_eq!(data["data"]["output"], json!([server.output_url(&id)]));
    let typed: cometapi_runway::types::CometEnvelope = serde_json::from_value(done).unwrap();
    assert_eq!(typed.data.unwrap().data.unwrap().output.unwrap(), [server.output_url(&id)]);
}

#[tokio::test]
async fn alternating_shape_switches_on_every_visible_poll() {
    let server = MockServer::builder().not_found_polls(1).start().await; // Alternating is the default
    let id = raw_create_ok(&server).await;
    assert_eq!(raw_poll(&server, &id).await.0, 400);
    let mut shapes = Vec::new();
    for _ in 0..4 {
        let (status, body) = raw_poll(&server, &id).await;
        assert_eq!(status, 200);
        shapes.push(is_envelope(&body));
    }
    assert_eq!(shapes, [false, true, false, true]);

    // Through the library.
    let client = fast(&server);
    let id = client.create(&request()).await.unwrap();
    let _ = client.get_task(&id).await.unwrap_err();
    let a = client.get_task(&id).await.unwrap();
    let b = client.get_task(&id).await.unwrap();
    assert_eq!((a.shape, b.shape), (Shape::Plain, Shape::Envelope));
    assert_eq!((a.id.as_str(), b.id.as_str()), (id.as_str(), id.as_str()));
}

#[tokio::test(start_paused = true)]
async fn throttled_comes_before_pending() {
    let server = MockServer::builder()
        .not_found_polls(0)
        .throttled_for(Duration::from_millis(300))
        .pending_for(Duration::from_millis(300))
        .shape(ResponseShape::Envelope)
        .start()
        .await;
    let start = tokio::time::Instant::now(); // paused: the timeline is exact
    let id = raw_create_ok(&server).await;
    let (_, body) = raw_poll(&server, &id).await;
    assert_eq!((runway_status(&body), body["data"]["status"].as_str()), ("THROTTLED", Some("QUEUED")));
    tokio::time::sleep_until(start + Duration::from_millis(450)).await;
    assert_eq!(runway_status(&raw_poll(&server, &id).await.1), "PENDING");

    // Through the library.
    let id = fast(&server).create(&request()).await.unwrap();
    let task = fast(&server).get_task(&id).await.unwrap();
    assert_eq!((task.status, task.raw_status.as_str()), (TaskStatus::Throttled, "THROTTLED"));
}

#[tokio::test]
async fn progress_can_be_left_out() {
    let server = MockServer::builder()
        .not_found_polls(0)
        .pending_for(Duration::ZERO)
        .running_for(Duration::from_secs(30))
        .report_progress(false)
        .start()
        .await;
    let id = raw_create_ok(&server).await;
    let (_, plain) = raw_poll(&server, &id).await;
    let (_, envelope) = raw_poll(&server, &id).await;
    assert_eq!(plain["status"], "RUNNING");
    assert!(plain.get("progress").is_none(), "{plain}");
    assert_eq!(envelope["data"]["status"], "IN_PROGRESS");
    assert!(envelope["data"].get("progress").is_none(), "{envelope}");
    assert!(envelope["data"]["data"].get("progress").is_none(), "{envelope}");

    let task = fast(&server).get_task(&id).await.unwrap();
    assert_eq!((task.status, task.progress), (TaskStatus::Running, None));
}

// ------------------------------------------------------------------------------------ outcomes

fn quick() -> cometapi_runway::mock::MockServerBuilder {
    MockServer::builder().pending_for(Duration::from_millis(5)).running_for(Duration::from_millis(20))
}

#[tokio::test]
async fn failed_outcome_carries_failure_and_code_in_both_shapes() {
    let server =
        quick().not_found_polls(0).outcome(Outcome::fail("SAFETY.INPUT.IMAGE", "The image was flagged")).start().await;
    let id = raw_create_ok(&server).await;
    sleep_ms(100).await;
    let (_, plain) = raw_poll(&server, &id).await;
    assert_eq!(
        (plain["status"].as_str(), plain["failure"].as_str(), plain["failureCode"].as_str()),
        (Some("FAILED"), Some("The image was flagged"), Some("SAFETY.INPUT.IMAGE"))
    );
    assert!(plain.get("output").is_none());
    let (_, envelope) = raw_poll(&server, &id).await;
    assert_eq!(envelope["data"]["status"], "FAILURE");
    assert_eq!(envelope["data"]["fail_reason"], "The image was flagged");
    assert_eq!(envelope["data"]["data"]["failureCode"], "SAFETY.INPUT.IMAGE");
    // No file for a failed task.
    assert_eq!(http().get(server.output_url(&id)).send().await.unwrap().status(), 404);

    let err = fast(&server).generate(&request()).await.unwrap_err();
    match &err {
        Error::TaskFailed { task } => {
            assert_eq!(task.failure_code.as_deref(), Some("SAFETY.INPUT.IMAGE"));
            assert_eq!(task.failure.as_deref(), Some("The image was flagged"));
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    assert_eq!(err.code(), Some("SAFETY.INPUT.IMAGE"));
}

#[tokio::test]
async fn cancelled_outcome() {
    let server = quick().not_found_polls(0).outcome(Outcome::Cancel).start().await;
    let id = raw_create_ok(&server).await;
    sleep_ms(100).await;
    let (_, plain) = raw_poll(&server, &id).await;
    assert_eq!(plain["status"], "CANCELLED");
    let (_, envelope) = raw_poll(&server, &id).await;
    assert_eq!((envelope["data"]["status"].as_str(), runway_status(&envelope)), (Some("FAILURE"), "CANCELLED"));

    for shape in [ResponseShape::Plain, ResponseShape::Envelope] {
        let server = quick().outcome(Outcome::Cancel).shape(shape).start().await;
        let err = fast(&server).generate(&request()).await.unwrap_err();
        assert!(matches!(err, Error::TaskCancelled { .. }), "{shape:?}: {err:?}");
    }
}

#[tokio::test]
async fn never_finishing_outcome_keeps_running_below_one() {
    let server = quick().not_found_polls(0).outcome(Outcome::NeverFinish).shape(ResponseShape::Plain).start().await;
    let id = raw_create_ok(&server).await;
    sleep_ms(150).await; // far past running_for
    let (_, body) = raw_poll(&server, &id).await;
    assert_eq!(body["status"], "RUNNING");
    let p = body["progress"].as_f64().unwrap();
    assert!((0.9..1.0).contains(&p), "{p}");

    let client = server.client().build().unwrap();
    let err = client.wait_with(&id, &MockServer::wait_options().timeout(Duration::from_millis(200))).await.unwrap_err();
    match err {
        Error::TimedOut { last, .. } => assert_eq!(last.unwrap().status, TaskStatus::Running),
        other => panic!("expected TimedOut, got {other:?}"),
    }
}

#[tokio::test]
async fn scenario_changes_apply_to_new_tasks_only() {
    let server = quick().not_found_polls(0).start().await;
    let client = fast(&server);
    let first = client.create(&request()).await.unwrap();
    server.set_scenario(
        Scenario::default().not_found_polls(0).outcome(Outcome::Cancel).running_for(Duration::from_millis(20)),
    );
    let second = client.create(&request()).await.unwrap();
    assert_eq!(client.wait(&first).await.unwrap().status, TaskStatus::Succeeded);
    assert!(matches!(client.wait(&second).await, Err(Error::TaskCancelled { .. })));
}

// ------------------------------------------------------------------------------------ download

#[tokio::test(start_paused = true)]
async fn download_serves_a_real_mp4_without_the_key() {
    let server = MockServer::builder()
        .not_found_polls(0)
        .pending_for(Duration::from_millis(300))
        .running_for(Duration::from_millis(100))
        .start()
        .await;
    let id = raw_create_ok(&server).await;
    // Not there before the task succeeded.
    assert_eq!(http().get(server.output_url(&id)).send().await.unwrap().status(), 404);
    sleep_ms(500).await;
    let response = http().get(server.output_url(&id)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    assert_eq!(response.headers()["content-length"], SAMPLE_MP4.len().to_string().as_str());
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..], SAMPLE_MP4);
    assert_eq!(&bytes[4..8], b"ftyp");
    assert!(SAMPLE_MP4.len() < 16 * 1024, "a few KB");

    let head = http().head(server.output_url(&id)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], SAMPLE_MP4.len().to_string().as_str());

    let unknown = http().get(format!("{}/files/nope.mp4", server.base_url())).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    // Recorded, with or without Authorization.
    let _ = http().get(server.output_url(&id)).bearer_auth("mock-key").send().await.unwrap();
    let downloads = server.requests_on(Route::Download);
    let auth: Vec<bool> = downloads.iter().map(|r| r.header("authorization").is_some()).collect();
    assert_eq!(auth, [false, false, false, false, true]);
}

#[test]
fn the_sample_is_an_mp4_with_a_video_track() {
    // ISO BMFF boxes: ftyp first, then moov before mdat (faststart), with an avc1 sample entry.
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= SAMPLE_MP4.len() {
        let size = u32::from_be_bytes(SAMPLE_MP4[at..at + 4].try_into().unwrap()) as usize;
        boxes.push(String::from_utf8_lossy(&SAMPLE_MP4[at + 4..at + 8]).to_string());
        assert!(size >= 8, "box size {size}");
        at += size;
    }
    assert_eq!(at, SAMPLE_MP4.len(), "boxes tile the file");
    assert_eq!(boxes.first().map(String::as_str), Some("ftyp"));
    let moov = boxes.iter().position(|b| b == "moov").expect("moov");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat");
    assert!(moov < mdat, "faststart: {boxes:?}");
    assert!(SAMPLE_MP4.windows(4).any(|w| w == b"avc1"), "H.264");
}

// --------------------------------------------------------------------------------------- faults

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_on_api_routes() {
    let server = MockServer::builder()
        .not_found_polls(0)
        .fault(Fault::RateLimit { times: 2, retry_after: Some(1) })
        .start()
        .await;
    for _ in 0..2 {
        let response = raw_create(&server, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
        assert!(body["error"]["message"].is_string() && body["error"]["type"].is_string());
    }
    assert_eq!(server.tasks_created(), 0, "a rate-limited create creates nothing");
    let id = raw_create_ok(&server).await;
    assert_eq!(raw_poll(&server, &id).await.0, 200);

    // A rate limit on a poll, without Retry-After.
    server.add_fault(Fault::RateLimit { times: 1, retry_after: None });
    let response = http().get(poll_url(&server, &id)).bearer_auth("mock-key").send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());

    // Through the library: the create is retried after Retry-After, one task results.
    let server = quick().fault(Fault::RateLimit { times: 1, retry_after: Some(1) }).start().await;
    let started = Instant::now();
    let task = fast(&server).generate(&request()).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    assert_eq!(server.tasks_created(), 1);
    assert_eq!(server.requests_on(Route::Create).len(), 2);
}

#[tokio::test]
async fn server_error_on_create_loses_the_answer_after_creating_the_task() {
    let server =
        quick().not_found_polls(0).fault(Fault::ServerError { status: 502, times: 1, on: Route::Create }).start().await;
    let response = raw_create(&server, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].is_string() && body["data"].is_null(), "{body}");
    assert_eq!(server.tasks_created(), 1, "the task exists although its id was lost");
    let lost = server.task_ids()[0].clone();
    sleep_ms(100).await;
    assert_eq!(runway_status(&raw_poll(&server, &lost).await.1), "SUCCEEDED");

    // Through the library: the create is not retried; exactly one task exists.
    let server = quick().fault(Fault::ServerError { status: 500, times: 1, on: Route::Create }).start().await;
    let err = fast(&server).create(&request()).await.unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    assert_eq!(server.tasks_created(), 1);
    assert_eq!(server.requests_on(Route::Create).len(), 1, "a 5xx create must not be retried");

    // A create that fails validation neither creates a task nor uses the fault up.
    let server = quick().fault(Fault::ServerError { status: 500, times: 1, on: Route::Create }).start().await;
    let response = raw_create(&server, json!({"promptImage": IMAGE})).await;
    assert_eq!(response.status(), 400);
    assert_eq!(raw_create(&server, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await.status(), 500);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn server_error_on_poll_is_ridden_out() {
    let server =
        quick().not_found_polls(0).fault(Fault::ServerError { status: 503, times: 2, on: Route::Poll }).start().await;
    let id = raw_create_ok(&server).await;
    for _ in 0..2 {
        let (status, body) = raw_poll(&server, &id).await;
        assert_eq!(status, 503);
        assert!(body["code"].is_string() && body["data"].is_null(), "{body}");
    }
    assert_eq!(raw_poll(&server, &id).await.0, 200);

    let server = quick().fault(Fault::ServerError { status: 503, times: 2, on: Route::Poll }).start().await;
    let task = fast(&server).generate(&request()).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn garbage_body_is_a_200_that_is_not_json() {
    let server = quick().not_found_polls(0).fault(Fault::GarbageBody { times: 1 }).start().await;
    let id = raw_create_ok(&server).await; // the default route is Poll: the create is untouched
    let response = http().get(poll_url(&server, &id)).bearer_auth("mock-key").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&text).is_err());
    assert_eq!(raw_poll(&server, &id).await.0, 200);

    let server = quick().fault(Fault::GarbageBody { times: 2 }).start().await;
    let task = fast(&server).generate(&request()).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);

    // Aimed at the create, it mangles the answer of a task that was created.
    let server = quick().fault_on(Route::Create, Fault::GarbageBody { times: 1 }).start().await;
    let err = fast(&server).create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(server.tasks_created(), 1);
    assert_eq!(server.requests_on(Route::Create).len(), 1);
}

#[tokio::test]
async fn html_error_page_from_a_proxy() {
    let server = quick().not_found_polls(0).fault(Fault::HtmlErrorPage { status: 502, times: 1 }).start().await;
    let id = raw_create_ok(&server).await;
    let response = http().get(poll_url(&server, &id)).bearer_auth("mock-key").send().await.unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = response.text().await.unwrap();
    assert!(page.contains("<html>") && page.contains("502 Bad Gateway"), "{page}");
    assert_eq!(raw_poll(&server, &id).await.0, 200);

    let server = quick().fault(Fault::HtmlErrorPage { status: 504, times: 1 }).start().await;
    assert_eq!(fast(&server).generate(&request()).await.unwrap().status, TaskStatus::Succeeded);

    // On the create: answered by the proxy, nothing created, and the library does not retry.
    let server = quick().fault_on(Route::Create, Fault::HtmlErrorPage { status: 502, times: 1 }).start().await;
    let err = fast(&server).create(&request()).await.unwrap_err();
    assert_eq!(err.status(), Some(502), "{err}");
    assert_eq!(server.tasks_created(), 0);
}

#[tokio::test(start_paused = true)]
async fn slow_answers_arrive_late() {
    let server = MockServer::builder()
        .not_found_polls(0)
        .fault(Fault::Slow { delay: Duration::from_millis(300), times: 2 })
        .start()
        .await;
    let started = tokio::time::Instant::now();
    let id = raw_create_ok(&server).await; // Api: the create is slow too
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(server.tasks_created(), 1);
    let started = tokio::time::Instant::now();
    assert_eq!(raw_poll(&server, &id).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = tokio::time::Instant::now();
    assert_eq!(raw_poll(&server, &id).await.0, 200);
    assert!(started.elapsed() < Duration::from_millis(300), "only the first two are slow");

    // A slow create is handled at once: a client that gives up still leaves a task behind.
    let server = quick().fault_on(Route::Create, Fault::Slow { delay: Duration::from_secs(5), times: 1 }).start().await;
    let client = server.client().request_timeout(Duration::from_millis(200)).build().unwrap();
    let err = client.create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { timeout: true, .. }), "{err:?}");
    assert_eq!(server.tasks_created(), 1);

    // A slow poll past the request timeout is retried.
    let server = quick().fault_on(Route::Poll, Fault::Slow { delay: Duration::from_secs(5), times: 1 }).start().await;
    let client = server.client().request_timeout(Duration::from_millis(200)).build().unwrap();
    assert_eq!(client.generate(&request()).await.unwrap().status, TaskStatus::Succeeded);
}

#[tokio::test]
async fn faults_apply_in_order_one_answer_per_request() {
    let server = quick()
        .not_found_polls(0)
        .fault(Fault::RateLimit { times: 1, retry_after: None })
        .fault(Fault::ServerError { status: 500, times: 1, on: Route::Poll })
        .fault(Fault::GarbageBody { times: 1 })
        .start()
        .await;
    // The rate limit (Api) takes the create; the poll faults wait for polls.
    let response = raw_create(&server, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await;
    assert_eq!(response.status(), 429);
    let id = raw_create_ok(&server).await;
    let statuses: Vec<(u16, bool)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let r = http().get(poll_url(&server, &id)).bearer_auth("mock-key").send().await.unwrap();
            let status = r.status().as_u16();
            let json = serde_json::from_slice::<Value>(&r.bytes().await.unwrap()).is_ok();
            v.push((status, json));
        }
        v
    };
    assert_eq!(statuses, [(500, true), (200, false), (200, true)]);
}

#[tokio::test]
async fn faults_skip_requests_with_a_bad_key_and_can_target_downloads() {
    let server = quick()
        .not_found_polls(0)
        .fault_on(Route::Download, Fault::ServerError { status: 503, times: 1, on: Route::Download })
        .fault(Fault::RateLimit { times: 1, retry_after: None })
        .start()
        .await;
    let unauthorised = http().post(create_url(&server)).json(&json!({})).send().await.unwrap();
    assert_eq!(unauthorised.status(), 401, "authentication comes first and uses no fault up");
    assert_eq!(raw_create(&server, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await.status(), 429);
    let id = raw_create_ok(&server).await;
    sleep_ms(100).await;
    assert_eq!(http().get(server.output_url(&id)).send().await.unwrap().status(), 503);
    assert_eq!(http().get(server.output_url(&id)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn fault_defaults_and_route_matching_are_as_documented() {
    assert_eq!(Fault::RateLimit { times: 1, retry_after: None }.default_route(), Route::Api);
    assert_eq!(Fault::GarbageBody { times: 1 }.default_route(), Route::Poll);
    assert_eq!(Fault::HtmlErrorPage { status: 502, times: 1 }.default_route(), Route::Poll);
    assert_eq!(Fault::Slow { delay: Duration::ZERO, times: 1 }.default_route(), Route::Api);
    assert_eq!(Fault::ServerError { status: 500, times: 1, on: Route::Create }.default_route(), Route::Create);
    assert!(
        Route::Api.matches(Route::Create) && Route::Api.matches(Route::Poll) && !Route::Api.matches(Route::Download)
    );
    assert!(Route::Any.matches(Route::Download));
    assert!(!Route::Poll.matches(Route::Create));
}

// ------------------------------------------------------------------------------- the server

#[tokio::test]
async fn defaults_are_as_documented() {
    let s = Scenario::default();
    assert_eq!(s.invisible_for, Duration::from_secs(1));
    assert_eq!(s.not_found_polls, 0);
    assert_eq!(s.pending_for, Duration::from_millis(30));
    assert_eq!(s.running_for, Duration::from_millis(100));
    assert!(s.report_progress);
    assert_eq!(s.outcome, Outcome::Succeed);
    assert_eq!(s.shape, ResponseShape::Alternating);
    assert!(s.faults.is_empty());

    let server = MockServer::start().await;
    assert_eq!(server.api_key(), "mock-key");
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert!(server.addr().ip().is_loopback());
    assert_ne!(server.addr().port(), 0);
    let client = fast(&server);
    assert_eq!(client.base_url(), server.base_url());
    let task = client.generate(&request()).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_gateway_errors_and_are_recorded() {
    let server = MockServer::start().await;
    let response = http().get(format!("{}/v1/models", server.base_url())).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let response = http().get(create_url(&server)).bearer_auth("mock-key").send().await.unwrap();
    assert_eq!(response.status(), 405);
    let log = server.requests();
    assert_eq!((log[0].route, log[0].path.as_str()), (None, "/v1/models"));
    assert_eq!(log[1].route, Some(Route::Create));
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_dropped_server_stops_answering() {
    let server = MockServer::start().await;
    let url = poll_url(&server, "x");
    let client = http();
    assert_eq!(client.get(&url).bearer_auth("mock-key").send().await.unwrap().status(), 400);
    drop(server);
    sleep_ms(50).await;
    assert!(client.get(&url).bearer_auth("mock-key").send().await.is_err());
    assert!(http().get(&url).send().await.is_err());
}

#[tokio::test]
async fn fixed_port_and_taken_port() {
    let first = MockServer::start().await;
    let taken = first.addr().port();
    let err = MockServer::builder().port(taken).try_start().await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let key = MockServer::builder().api_key("sk-other").start().await;
    let response = raw_create(&key, json!({"promptImage": IMAGE, "model": "gen3a_turbo"})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn servers_are_independent() {
    let (a, b) = (MockServer::start().await, MockServer::start().await);
    fast(&a).create(&request()).await.unwrap();
    assert_eq!((a.tasks_created(), b.tasks_created()), (1, 0));
    assert!(b.requests().is_empty());
    // A task of one server is unknown to the other.
    let id = a.task_ids()[0].clone();
    assert_eq!(raw_poll(&b, &id).await, (400, task_not_exist_body()));
}

// ------------------------------------------------- core behaviours: simulator and httpmock alike

/// How the scripted task ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Succeed,
    Fail,
    Cancel,
}

/// What the core suite needs from a backend imitating the service.
struct Backend {
    name: &'static str,
    client: Client,
    creates: Box<dyn Fn() -> usize + Send + Sync>,
    polls: Box<dyn Fn() -> usize + Send + Sync>,
    /// Whether each download request carried an Authorization header.
    download_auth: Box<dyn Fn() -> Vec<bool> + Send + Sync>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

/// The simulator, as it is.
async fn simulator(end: End, shape: ResponseShape) -> Backend {
    let outcome = match end {
        End::Succeed => Outcome::Succeed,
        End::Fail => Outcome::fail("SAFETY.INPUT.IMAGE", "The image was flagged"),
        End::Cancel => Outcome::Cancel,
    };
    let server = Arc::new(
        MockServer::builder()
            .not_found_polls(1)
            .pending_for(Duration::from_millis(40))
            .running_for(Duration::from_millis(400))
            .outcome(outcome)
            .shape(shape)
            .start()
            .await,
    );
    let (a, b, c) = (server.clone(), server.clone(), server.clone());
    Backend {
        name: "simulator",
        client: server.client().build().unwrap(),
        creates: Box::new(move || a.requests_on(Route::Create).len()),
        polls: Box::new(move || b.requests_on(Route::Poll).len()),
        download_auth: Box::new(move || {
            c.requests_on(Route::Download)
                .iter()
                .map(|r: &RecordedRequest| r.header("authorization").is_some())
                .collect()
        }),
        _keep: Box::new(server),
    }
}

/// An httpmock script of the same service: task_not_exist, PENDING, RUNNING 0.25, RUNNING 0.75,
/// then the end; the file route serves the same MP4.
async fn httpmock_backend(end: End, shape: ResponseShape) -> Backend {
    const ID: &str = "3d957031-9a2a-45e2-9dc7-bc8513059c50";
    let server = Arc::new(httpmock::MockServer::start_async().await);
    let base = server.base_url();
    let envelope = shape == ResponseShape::Envelope;
    let runway = |status: &str, extra: Value| {
        let mut t = json!({"id": ID, "status": status, "createdAt": "2026-05-01T12:47:47.351Z"});
        for (k, v) in extra.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    };
    let wrap = |gateway: &str, progress: &str, nested: Value, fail_reason: &str| {
        json!({"code": "success", "message": "", "data": {"task_id": ID, "action": "IMAGE_TO_VIDEO",
            "status": gateway, "fail_reason": fail_reason, "submit_time": 1773366766, "start_time": 0,
            "finish_time": 0, "progress": progress, "data": nested}})
    };
    let output = format!("{base}/files/{ID}.mp4");
    let steps: Vec<(&str, &str, &str, Value, &str)> = vec![
        ("PENDING", "QUEUED", "0%", json!({}), ""),
        ("RUNNING", "IN_PROGRESS", "25%", json!({"progress": 0.25}), ""),
        ("RUNNING", "IN_PROGRESS", "75%", json!({"progress": 0.75}), ""),
        match end {
            End::Succeed => ("SUCCEEDED", "SUCCESS", "100%", json!({"output": [output]}), ""),
            End::Fail => (
                "FAILED",
                "FAILURE",
                "100%",
                json!({"failure": "The image was flagged", "failureCode": "SAFETY.INPUT.IMAGE"}),
                "The image was flagged",
            ),
            End::Cancel => ("CANCELLED", "FAILURE", "100%", json!({}), "task cancelled"),
        },
    ];
    let mut script: Vec<(u16, String)> = vec![(400, task_not_exist_body().to_string())];
    for (status, gateway, progress, extra, reason) in steps {
        let nested = runway(status, extra);
        let body = if envelope { wrap(gateway, progress, nested, reason) } else { nested };
        script.push((200, body.to_string()));
    }

    let creates = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    let downloads: Arc<Mutex<Vec<bool>>> = Arc::default();
    {
        let creates = creates.clone();
        server
            .mock_async(move |when, then| {
                when.method("POST")
                    .path("/runwayml/v1/image_to_video")
                    .header("authorization", "Bearer sk-httpmock")
                    .header_exists("x-runway-version");
                then.respond_with(move |_| {
                    creates.fetch_add(1, Ordering::SeqCst);
                    httpmock::HttpMockResponse::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(json!({"id": ID}).to_string())
                        .build()
                });
            })
            .await;
    }
    {
        let polls = polls.clone();
        server
            .mock_async(move |when, then| {
                when.method("GET")
                    .path(format!("/runwayml/v1/tasks/{ID}"))
                    .header("authorization", "Bearer sk-httpmock");
                then.respond_with(move |_| {
                    let n = polls.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = &script[n.min(script.len() - 1)];
                    httpmock::HttpMockResponse::builder()
                        .status(*status)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .build()
                });
            })
            .await;
    }
    {
        let downloads = downloads.clone();
        server
            .mock_async(move |when, then| {
                when.method("GET").path(format!("/files/{ID}.mp4"));
                then.respond_with(move |req: &httpmock::HttpMockRequest| {
                    let has_auth = req.headers().get("authorization").is_some();
                    downloads.lock().unwrap().push(has_auth);
                    httpmock::HttpMockResponse::builder()
                        .status(200)
                        .header("content-type", "video/mp4")
                        .body(SAMPLE_MP4.to_vec())
                        .build()
                });
            })
            .await;
    }
    let client = Client::builder()
        .api_key("sk-httpmock")
        .base_url(base)
        .wait_options(MockServer::wait_options())
        .retry_policy(MockServer::retry_policy())
        .build()
        .unwrap();
    Backend {
        name: "httpmock",
        client,
        creates: Box::new(move || creates.load(Ordering::SeqCst)),
        polls: Box::new(move || polls.load(Ordering::SeqCst)),
        download_auth: Box::new(move || downloads.lock().unwrap().clone()),
        _keep: Box::new(server),
    }
}

/// The library's core behaviours, against any backend.
async fn core_success(backend: Backend, shape: Shape) {
    let name = backend.name;
    let seen: Arc<Mutex<Vec<Task>>> = Arc::default();
    let options = {
        let seen = seen.clone();
        MockServer::wait_options().on_update(move |t| seen.lock().unwrap().push(t.clone()))
    };
    let id = backend.client.create(&request()).await.unwrap();
    // Not visible yet right after creation.
    let err = backend.client.get_task(&id).await.unwrap_err();
    assert!(err.is_task_not_exist(), "{name}: {err}");
    let task = backend.client.wait_with(&id, &options).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded, "{name}");
    assert_eq!(task.shape, shape, "{name}");
    assert_eq!(task.progress, Some(1.0), "{name}");
    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<TaskStatus> = seen.iter().map(|t| t.status.clone()).collect();
    assert!(statuses.contains(&TaskStatus::Running), "{name}: {statuses:?}");
    let progress: Vec<f64> =
        seen.iter().filter(|t| t.status == TaskStatus::Running).filter_map(|t| t.progress).collect();
    assert!(!progress.is_empty() && progress.iter().all(|p| (0.0..1.0).contains(p)), "{name}: {progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{name}: progress rises: {progress:?}");
    assert!(seen.iter().all(|t| t.shape == shape && t.id == id), "{name}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.mp4");
    let bytes = backend.client.download(&task.output[0], &path).await.unwrap();
    let file = std::fs::read(&path).unwrap();
    assert_eq!(bytes as usize, file.len(), "{name}");
    assert_eq!(&file[4..8], b"ftyp", "{name}");
    assert_eq!(file, SAMPLE_MP4, "{name}");
    assert_eq!((backend.download_auth)(), [false], "{name}: the key must not travel to the CDN");
    assert_eq!((backend.creates)(), 1, "{name}: exactly one task created");
    assert!((backend.polls)() >= 4, "{name}");
}

async fn core_failure(backend: Backend) {
    let name = backend.name;
    let err = backend.client.generate(&request()).await.unwrap_err();
    match &err {
        Error::TaskFailed { task } => {
            assert_eq!(task.failure_code.as_deref(), Some("SAFETY.INPUT.IMAGE"), "{name}");
            assert_eq!(task.failure.as_deref(), Some("The image was flagged"), "{name}");
        }
        other => panic!("{name}: expected TaskFailed, got {other:?}"),
    }
    assert_eq!((backend.creates)(), 1, "{name}");
}

async fn core_cancel(backend: Backend) {
    let name = backend.name;
    let err = backend.client.generate(&request()).await.unwrap_err();
    assert!(matches!(err, Error::TaskCancelled { .. }), "{name}: {err:?}");
    assert_eq!((backend.creates)(), 1, "{name}");
}

#[tokio::test]
async fn core_behaviours_hold_against_the_simulator_and_httpmock() {
    for (shape, want) in [(ResponseShape::Plain, Shape::Plain), (ResponseShape::Envelope, Shape::Envelope)] {
        core_success(simulator(End::Succeed, shape).await, want).await;
        core_success(httpmock_backend(End::Succeed, shape).await, want).await;
        core_failure(simulator(End::Fail, shape).await).await;
        core_failure(httpmock_backend(End::Fail, shape).await).await;
        core_cancel(simulator(End::Cancel, shape).await).await;
        core_cancel(httpmock_backend(End::Cancel, shape).await).await;
    }
}

#[tokio::test]
async fn core_behaviours_hold_with_alternating_shapes_and_faults() {
    // The realistic mix: alternating shapes, a rate limit on the create, a 5xx and garbage on polls.
    let server = MockServer::builder()
        .not_found_polls(2)
        .fault(Fault::RateLimit { times: 1, retry_after: Some(0) })
        .fault(Fault::ServerError { status: 502, times: 1, on: Route::Poll })
        .fault(Fault::GarbageBody { times: 1 })
        .fault(Fault::HtmlErrorPage { status: 503, times: 1 })
        .start()
        .await;
    let client = fast(&server);
    let task = client.generate(&request()).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    let dir = tempfile::tempdir().unwrap();
    client.download(&task.output[0], dir.path().join("v.mp4")).await.unwrap();
    assert_eq!(server.tasks_created(), 1);
    assert!(server.requests_on(Route::Download).iter().all(|r| r.header("authorization").is_none()));
    let creates = server.requests_on(Route::Create);
    assert_eq!(creates.len(), 2, "the 429 was retried once");
}

#[tokio::test]
async fn download_honours_single_byte_ranges() {
    let server = quick().not_found_polls(0).start().await;
    let id = raw_create_ok(&server).await;
    sleep_ms(200).await;
    let url = server.output_url(&id);
    let len = SAMPLE_MP4.len();
    for (range, first, last) in [("bytes=0-7", 0, 7), ("bytes=100-", 100, len - 1), ("bytes=-16", len - 16, len - 1)] {
        let response = http().get(&url).header("Range", range).send().await.unwrap();
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(response.headers()["content-range"], format!("bytes {first}-{last}/{len}").as_str());
        assert_eq!(&response.bytes().await.unwrap()[..], &SAMPLE_MP4[first..=last], "{range}");
    }
    let response = http().get(&url).header("Range", format!("bytes={len}-")).send().await.unwrap();
    assert_eq!(response.status(), 416);
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.headers()["accept-ranges"], "bytes");
}

#[tokio::test(start_paused = true)]
async fn timelines_follow_a_paused_test_clock() {
    // Realistic minutes-long timings, run in a blink: the simulator reads tokio's clock.
    let server = MockServer::builder()
        .not_found_polls(1)
        .pending_for(Duration::from_secs(30))
        .running_for(Duration::from_secs(300))
        .start()
        .await;
    let client = server.client().build().unwrap();
    let options = MockServer::wait_options().poll_policy(cometapi_runway::PollPolicy::fixed(Duration::from_secs(5)));
    let started = Instant::now();
    let task = client.generate_with(&request(), &options).await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert!(started.elapsed() < Duration::from_secs(30), "real time: {:?}", started.elapsed());
    let polls = server.requests_on(Route::Poll).len();
    assert!((60..=80).contains(&polls), "about 330 s / 5 s polls, got {polls}");
}
