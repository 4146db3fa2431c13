//! Contract of the create call: what goes on the wire and what comes back, including every
//! error-body shape the service's stack sends.

mod common;

use cometapi_runway::{Client, Error, ImageToVideo, Model, Ratio, RetryPolicy};
use common::{api_request, client, Reply, CREATE_PATH, KEY, TASK_ID};
use httpmock::MockServer;
use serde_json::json;

const IMAGE: &str = "https://example.com/cat.jpg";

#[tokio::test]
async fn create_sends_the_minimal_body_and_returns_the_task_id() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            api_request(when, "2024-11-06")
                .method("POST")
                .path(CREATE_PATH)
                .header("content-type", "application/json")
                // Optional fields left unset are not sent: no `watermark: false`.
                .json_body(json!({"promptImage": IMAGE, "model": "gen3a_turbo"}));
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;

    let id = client(&server).create(&ImageToVideo::new(IMAGE)).await.unwrap();

    assert_eq!(id, TASK_ID);
    mock.assert_calls_async(1).await;
}

#[tokio::test]
async fn create_sends_every_field_when_all_are_set() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            api_request(when, "2024-11-06").method("POST").path(CREATE_PATH).json_body(json!({
                "promptImage": IMAGE,
                "model": "gen3a_turbo",
                "promptText": "the cat yawns, camera slowly pushes in",
                "seed": 999_999_999,
                "watermark": true,
                "duration": 10,
                "ratio": "768:1280",
            }));
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;

    let request = ImageToVideo::new(IMAGE)
        .model(Model::GEN3A_TURBO)
        .prompt_text("the cat yawns, camera slowly pushes in")
        .seed(999_999_999)
        .watermark(true)
        .duration(10)
        .ratio(Ratio::W768H1280);
    let id = client(&server).create(&request).await.unwrap();

    assert_eq!(id, TASK_ID);
    mock.assert_calls_async(1).await;
}

#[tokio::test]
async fn create_accepts_a_model_the_crate_does_not_know() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            api_request(when, "2024-11-06")
                .method("POST")
                .path(CREATE_PATH)
                .json_body(json!({"promptImage": IMAGE, "model": "gen5_future", "duration": 7}));
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;

    // An unknown model with an unusual duration is sent as given.
    client(&server).create(&ImageToVideo::new(IMAGE).model("gen5_future").duration(7)).await.unwrap();

    mock.assert_calls_async(1).await;
}

#[tokio::test]
async fn create_sends_the_default_runway_version_2024_11_06() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST").path(CREATE_PATH).header("x-runway-version", "2024-11-06");
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;

    let client = client(&server);
    client.create(&ImageToVideo::new(IMAGE)).await.unwrap();

    assert_eq!(client.runway_version(), cometapi_runway::DEFAULT_RUNWAY_VERSION);
    mock.assert_calls_async(1).await;
}

#[tokio::test]
async fn create_and_poll_send_an_overridden_runway_version() {
    let server = MockServer::start_async().await;
    let create = server
        .mock_async(|when, then| {
            api_request(when, "2025-01-01").method("POST").path(CREATE_PATH);
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;
    let poll = server
        .mock_async(|when, then| {
            api_request(when, "2025-01-01").method("GET").path(common::task_path(TASK_ID));
            then.status(200).json_body(common::plain("PENDING"));
        })
        .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .runway_version("2025-01-01")
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();

    let id = client.create(&ImageToVideo::new(IMAGE)).await.unwrap();
    client.get_task(&id).await.unwrap();

    create.assert_calls_async(1).await;
    poll.assert_calls_async(1).await;
}

#[tokio::test]
async fn user_agent_names_the_crate_and_its_version() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST").path(CREATE_PATH).header("user-agent", "cometapi-runway/0.1.0");
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;

    client(&server).create(&ImageToVideo::new(IMAGE)).await.unwrap();

    assert_eq!(common::USER_AGENT, concat!("cometapi-runway/", env!("CARGO_PKG_VERSION")));
    mock.assert_calls_async(1).await;
}

#[tokio::test]
async fn an_empty_task_id_is_a_decode_error() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST").path(CREATE_PATH);
            then.status(200).json_body(json!({"id": ""}));
        })
        .await;

    let err = client(&server).create(&ImageToVideo::new(IMAGE)).await.unwrap_err();

    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    mock.assert_calls_async(1).await;
}

#[tokio::test]
async fn create_is_not_retried_on_a_server_error_by_default() {
    // A 5xx may come after the task was created: retrying could bill a second task.
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST").path(CREATE_PATH);
            then.status(502).body("");
        })
        .await;
    let client = Client::builder().api_key(KEY).base_url(server.base_url()).build().unwrap();

    let err = client.create(&ImageToVideo::new(IMAGE)).await.unwrap_err();

    assert_eq!(err.status(), Some(502));
    mock.assert_calls_async(1).await;
}

/// Creates against a server that answers `reply`, and returns the error.
async fn create_error(reply: Reply) -> Error {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method("POST").path(CREATE_PATH);
            let mut then = then.status(reply.status).body(reply.body.clone());
            for (name, value) in &reply.headers {
                then = then.header(name.clone(), value.clone());
            }
        })
        .await;
    let err = client(&server).create(&ImageToVideo::new(IMAGE)).await.unwrap_err();
    mock.assert_calls_async(1).await;
    err
}

#[tokio::test]
async fn gateway_error_body_gives_status_code_and_message() {
    let body = json!({"code": "invalid_request", "message": "promptImage is not reachable", "data": null});
    let err = create_error(Reply::json(400, body.clone())).await;

    let Error::Api { status, code, message, body: snippet, retry_after } = &err else { panic!("{err:?}") };
    assert_eq!(*status, 400);
    assert_eq!(code.as_deref(), Some("invalid_request"));
    assert_eq!(message.as_deref(), Some("promptImage is not reachable"));
    assert_eq!(snippet, &body.to_string());
    assert_eq!(*retry_after, None);
    assert_eq!(err.to_string(), "API error (HTTP 400): invalid_request: promptImage is not reachable");
}

#[tokio::test]
async fn openai_style_error_body_gives_code_and_message_and_401_hints_at_the_key() {
    let body = json!({"error": {"message": "Invalid token", "type": "comet_api_error", "code": "invalid_api_key"}});
    let err = create_error(Reply::json(401, body)).await;

    let Error::Api { status, code, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_deref(), message.as_deref()), (401, Some("invalid_api_key"), Some("Invalid token")));
    let text = err.to_string();
    assert!(text.contains("Invalid token") && text.contains("API key") && text.contains("COMETAPI_KEY"), "{text}");
}

#[tokio::test]
async fn openai_style_error_without_a_code_falls_back_to_its_type() {
    let body = json!({"error": {"message": "quota exceeded", "type": "insufficient_quota", "code": null}});
    let err = create_error(Reply::json(403, body)).await;

    assert_eq!(err.code(), Some("insufficient_quota"));
    assert!(err.to_string().contains("API key"), "{err}");
}

#[tokio::test]
async fn runway_error_body_gives_its_text_as_the_message() {
    let err = create_error(Reply::json(400, json!({"error": "promptImage must be a valid URL"}))).await;

    let Error::Api { status, code, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_deref()), (400, None));
    assert_eq!(message.as_deref(), Some("promptImage must be a valid URL"));
}

#[tokio::test]
async fn html_error_page_is_kept_as_a_bounded_snippet() {
    let page = format!("<html><body><h1>502 Bad Gateway</h1>{}</body></html>", "x".repeat(20_000));
    let err = create_error(Reply::raw(502, "text/html", page)).await;

    let Error::Api { status, code, message, body, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_deref(), message.as_deref()), (502, None, None));
    assert!(body.starts_with("<html><body><h1>502 Bad Gateway</h1>"), "{body}");
    assert_eq!(body.chars().count(), 513, "512 characters and the cut mark");
    assert!(body.ends_with('…'));
    assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
}

#[tokio::test]
async fn empty_error_body_says_so() {
    let err = create_error(Reply::raw(503, "text/plain", "")).await;

    let Error::Api { status, code, message, body, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_deref(), message.as_deref(), body.as_str()), (503, None, None, ""));
    assert!(err.to_string().contains("empty body"), "{err}");
}

#[tokio::test]
async fn rate_limit_error_carries_retry_after() {
    let reply = Reply::json(429, json!({"error": {"message": "slow down", "type": "rate_limit", "code": null}}))
        .header("retry-after", "7");
    let err = create_error(reply).await;

    let Error::Api { status, retry_after, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*status, 429);
    assert_eq!(*retry_after, Some(std::time::Duration::from_secs(7)));
    assert_eq!(err.code(), Some("rate_limit"));
}

#[test]
fn client_and_its_futures_can_be_shared_across_tasks() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send>(_: &T) {}
    shareable::<Client>();
    let client = Client::builder().api_key(KEY).build().unwrap();
    let request = ImageToVideo::new(IMAGE);
    sendable(&client.create(&request));
    sendable(&client.wait(TASK_ID));
    sendable(&client.updates(TASK_ID, Default::default()));
}
