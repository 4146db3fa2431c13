//! What the contract tests share: a client pointed at an httpmock server, the request
//! expectations every API call must meet, response bodies in both task shapes, and a poll mock
//! that answers from a script.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use cometapi_runway::{Client, Error, ImageToVideo, PollPolicy, RetryPolicy, WaitOptions};
use httpmock::{HttpMockResponse, Mock, MockServer, When};
use serde_json::{json, Value};

/// The key every test client sends.
pub const KEY: &str = "sk-contract-test-key";
/// The create route.
pub const CREATE_PATH: &str = "/runwayml/v1/image_to_video";
/// The id the tests' tasks carry.
pub const TASK_ID: &str = "3d957031-9a2a-45e2-9dc7-bc8513059c50";
/// The `User-Agent` the crate must send.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Sends `request` to a server that records everything, and returns the error; the server must
/// have seen no request at all.
pub async fn rejected_without_sending(request: ImageToVideo) -> Error {
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;
    let err = client(&server).create(&request).await.expect_err("the request breaks a rule");
    any.assert_calls_async(0).await;
    err
}

/// Sends `request` and checks it went out once with exactly `body`.
pub async fn accepted_and_sent_as(request: ImageToVideo, body: Value) {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            api_request(when, "2024-11-06").method("POST").path(CREATE_PATH).json_body(body);
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;
    assert_eq!(client(&server).create(&request).await.unwrap(), TASK_ID);
    mock.assert_calls_async(1).await;
}

/// The poll route for a task.
pub fn task_path(id: &str) -> String {
    format!("/runwayml/v1/tasks/{id}")
}

/// A client for `server` that does not retry, so every request a test sees is one attempt.
pub fn client(server: &MockServer) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a loopback test client builds")
}

/// Waiting on a millisecond scale: tests run in real time against a real socket.
pub fn fast_wait() -> WaitOptions {
    WaitOptions::default()
        .poll_policy(PollPolicy::fixed(Duration::from_millis(5)))
        .not_found_grace(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
}

/// What every API request must carry: the key as a bearer token, the Runway version, and no
/// `api-version` header (progenitor adds one from the spec's `info.version`; the crate strips it).
pub fn api_request(when: When, runway_version: &str) -> When {
    when.header("authorization", format!("Bearer {KEY}"))
        .header("x-runway-version", runway_version)
        .header("user-agent", USER_AGENT)
        .header_missing("api-version")
}

/// A poll of `id` as the crate must send it.
pub fn poll_request(when: When, id: &str) -> When {
    api_request(when, "2024-11-06").method("GET").path(task_path(id))
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// `200` with this JSON body.
    pub fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }

    /// This status with this JSON body.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: body.to_string(), headers: vec![("content-type".into(), "application/json".into())] }
    }

    /// This status with this body as it is (HTML pages, empty bodies).
    pub fn raw(status: u16, content_type: &str, body: impl Into<String>) -> Reply {
        Reply { status, body: body.into(), headers: vec![("content-type".into(), content_type.into())] }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn to_response(&self) -> HttpMockResponse {
        HttpMockResponse::builder().status(self.status).headers(self.headers.clone()).body(self.body.clone()).build()
    }
}

/// The gateway's "not visible yet" answer.
pub fn task_not_exist() -> Reply {
    Reply::json(400, json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}))
}

/// A poll mock for `id` that gives the script's answers in order, then repeats the last one.
/// The mock only matches well-formed polls, so its hit count is the number of correct polls.
pub async fn scripted_poll<'a>(server: &'a MockServer, id: &str, script: Vec<Reply>) -> Mock<'a> {
    assert!(!script.is_empty(), "a script needs at least one answer");
    let next = Arc::new(AtomicUsize::new(0));
    let id = id.to_string();
    server
        .mock_async(move |when, then| {
            poll_request(when, &id);
            then.respond_with(move |_| {
                let n = next.fetch_add(1, Ordering::SeqCst);
                script[n.min(script.len() - 1)].to_response()
            });
        })
        .await
}

/// A mock that matches any request at all: a test asserts it saw none.
pub async fn any_request(server: &MockServer) -> Mock<'_> {
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(500).body("the test expected no request");
        })
        .await
}

/// A plain Runway task.
pub fn plain(status: &str) -> Value {
    json!({"id": TASK_ID, "status": status, "createdAt": "2026-05-01T12:47:47.351Z"})
}

/// Adds or replaces fields of a JSON object.
pub fn with(mut value: Value, fields: Value) -> Value {
    let target = value.as_object_mut().expect("an object");
    for (k, v) in fields.as_object().expect("fields are an object") {
        target.insert(k.clone(), v.clone());
    }
    value
}

/// CometAPI's envelope around a gateway record (`gateway` fields) and, if given, a nested
/// Runway task.
pub fn envelope(gateway_status: &str, gateway: Value, nested: Option<Value>) -> Value {
    let mut data = with(
        json!({"task_id": TASK_ID, "action": "IMAGE_TO_VIDEO", "status": gateway_status, "fail_reason": "",
               "submit_time": 1773366766, "start_time": 0, "finish_time": 0, "progress": "0%"}),
        gateway,
    );
    if let Some(nested) = nested {
        data["data"] = nested;
    }
    json!({"code": "success", "message": "", "data": data})
}

/// The spec, `openapi/cometapi-runway.yaml`, as JSON.
pub fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/cometapi-runway.yaml");
    let text = std::fs::read_to_string(path).expect("the spec is readable");
    serde_norway::from_str(&text).expect("the spec is valid YAML")
}
