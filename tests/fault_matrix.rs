//! The fault matrix: one test per row, each asserting the outcome the caller sees *and* how many
//! tasks the server may have created. No row may create more than one.
//!
//! Run: `cargo test --features cli --test fault_matrix`. The table is in docs/RELIABILITY.md.
//!
//! The servers are the small scripted ones in `support/` (the faults here are malformed HTTP
//! that a well-behaved server cannot produce), on 127.0.0.1, with client timeouts of a few
//! hundred milliseconds so the whole file runs in seconds.

mod support;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cometapi_runway::{
    Client, ClientBuilder, DownloadOptions, Error, ImageToVideo, PollPolicy, RetryPolicy, TaskStatus, WaitOptions,
};
use serde_json::json;
use support::{Reply, Routes, Server, VIDEO};

const KEY: &str = "sk-fault-matrix";
/// The client's request timeout in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
/// The longest `Retry-After` the client honours in these tests.
const MAX_RETRY_AFTER: Duration = Duration::from_millis(150);
const POLL: Duration = Duration::from_millis(10);
const NOT_FOUND_GRACE: Duration = Duration::from_millis(200);

fn request() -> ImageToVideo {
    ImageToVideo::new("https://example.com/cat.jpg").prompt_text("the cat yawns")
}

fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .max_retries(3)
        .base_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
        .max_retry_after(MAX_RETRY_AFTER)
}

fn wait_options() -> WaitOptions {
    WaitOptions::default()
        .poll_policy(PollPolicy::fixed(POLL))
        .timeout(Duration::from_secs(3))
        .not_found_grace(NOT_FOUND_GRACE)
}

fn builder(server: &Server) -> ClientBuilder {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .connect_timeout(REQUEST_TIMEOUT)
        .request_timeout(REQUEST_TIMEOUT)
        .retry_policy(retry_policy())
        .wait_options(wait_options())
}

fn client(server: &Server) -> Client {
    builder(server).build().unwrap()
}

/// A server whose create call answers `create` and whose polls answer `poll`, output served.
async fn server(create: Vec<Reply>, poll: Vec<Reply>) -> Server {
    Server::start(|base| Routes { create, poll, ..Routes::happy(base) }).await
}

fn succeeded(base: &str) -> Reply {
    Reply::succeeded("t1", &format!("{base}/files/t1.mp4"))
}

fn running() -> Reply {
    Reply::json(200, json!({"id": "t1", "status": "RUNNING", "progress": 0.4}))
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

// ---- rate limits -------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_bounded_and_creates_one_task() {
    let in_two_seconds = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    let limited = |retry_after: &str| {
        Reply::json(429, json!({"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit"}}))
            .with_header("Retry-After", retry_after)
    };
    let server = Server::start(|base| Routes {
        create: vec![limited("3600"), limited(&in_two_seconds), Reply::created("t1")],
        ..Routes::happy(base)
    })
    .await;
    let started = Instant::now();
    let id = client(&server).create(&request()).await.unwrap();
    let took = started.elapsed();

    assert_eq!(id, "t1");
    // Backoff alone is at most 20 ms a step: the two pauses came from Retry-After (in seconds,
    // then as an HTTP date), each cut to the 150 ms cap instead of an hour and two seconds.
    assert!(took >= 2 * MAX_RETRY_AFTER - Duration::from_millis(10), "{took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(server.creates(), 3);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_and_creates_one_task() {
    let limited = Reply::json(429, json!({"error": {"message": "slow down", "type": "rate_limit", "code": null}}));
    let server = Server::start(|base| Routes {
        create: vec![limited.clone(), limited.clone(), Reply::created("t1")],
        poll: vec![limited.clone(), succeeded(base)],
        ..Routes::happy(base)
    })
    .await;
    let task = client(&server).generate(&request()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!((server.creates(), server.polls()), (3, 2));
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn rate_limit_that_outlasts_the_retries_is_a_typed_error_and_creates_nothing() {
    let limited =
        Reply::json(429, json!({"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit"}}))
            .with_header("Retry-After", "0");
    let server = server(vec![limited], vec![]).await;
    let err = client(&server).create(&request()).await.unwrap_err();

    assert!(matches!(&err, Error::Api { status: 429, retry_after: Some(d), .. } if d.is_zero()), "{err:?}");
    assert_eq!(err.code(), Some("rate_limit"));
    assert_eq!(server.creates(), 4, "one try and three retries");
    assert_eq!(server.tasks_created(), 0);
}

// ---- server errors -----------------------------------------------------------------------

#[tokio::test]
async fn server_errors_on_poll_are_retried_until_the_task_is_seen() {
    for status in [500, 502, 503, 504] {
        let error = Reply::json(status, json!({"code": "upstream_error", "message": "try again", "data": null}));
        let server =
            Server::start(|base| Routes { poll: vec![error.clone(), error, succeeded(base)], ..Routes::happy(base) })
                .await;
        let task = client(&server).generate(&request()).await.unwrap();

        assert_eq!(task.status, TaskStatus::Succeeded, "{status}");
        assert_eq!(server.polls(), 3, "{status}");
        assert_eq!(server.tasks_created(), 1, "{status}");
    }
}

#[tokio::test]
async fn server_error_on_create_is_not_retried_and_creates_at_most_one_task() {
    for status in [500, 502, 503, 504] {
        let error = Reply::json(status, json!({"code": "upstream_error", "message": "upstream failed", "data": null}));
        let server = server(vec![error], vec![]).await;
        let err = client(&server).create(&request()).await.unwrap_err();

        assert!(matches!(&err, Error::Api { status: s, .. } if *s == status), "{err:?}");
        assert_eq!(err.code(), Some("upstream_error"));
        assert_eq!(server.creates(), 1, "{status}: a create must not be retried after a 5xx");
        assert_eq!(server.tasks_created(), 1, "{status}");
    }
}

#[tokio::test]
async fn server_error_on_create_is_retried_only_when_the_caller_opts_in() {
    let error = Reply::json(503, json!({"code": "upstream_error", "message": "busy", "data": null}));
    let server = server(vec![error, Reply::created("t1")], vec![]).await;
    let client = builder(&server).retry_policy(retry_policy().retry_create_on_server_error(true)).build().unwrap();

    assert_eq!(client.create(&request()).await.unwrap(), "t1");
    // The opt-in accepts exactly this risk: two create requests reached the server.
    assert_eq!(server.creates(), 2);
}

// ---- connections -------------------------------------------------------------------------

#[tokio::test]
async fn connection_refused_before_sending_is_retried_and_creates_one_task() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener); // nothing listens there now: connecting is refused
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("http://{addr}"))
        .request_timeout(REQUEST_TIMEOUT)
        .retry_policy(
            RetryPolicy::default()
                .max_retries(20)
                .base_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let create = tokio::spawn(async move { client.create(&request()).await });
    tokio::time::sleep(Duration::from_millis(60)).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = Server::serve(listener, Routes::happy(&format!("http://{addr}"))).await;

    assert_eq!(create.await.unwrap().unwrap(), "t1");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn connection_reset_mid_body_on_poll_is_retried() {
    let server = Server::start(|base| Routes {
        poll: vec![Reply::reset_mid_body(json!({"id": "t1", "status": "RUNNING", "progress": 0.5})), succeeded(base)],
        ..Routes::happy(base)
    })
    .await;
    let task = client(&server).generate(&request()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(server.polls(), 2);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn connection_reset_mid_body_on_create_is_a_transport_error_not_a_retry() {
    let server = server(vec![Reply::reset_mid_body(json!({"id": "t1"}))], vec![]).await;
    let err = client(&server).create(&request()).await.unwrap_err();

    assert!(matches!(err, Error::Transport { timeout: false, .. }), "{err:?}");
    assert_eq!(server.creates(), 1, "the task may exist: no second create");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn stalled_server_on_create_times_out_within_the_request_timeout_without_retry() {
    for stall in [Reply::Stall, Reply::RawThenStall(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{\"id\":".to_vec())]
    {
        let server = server(vec![stall.clone()], vec![]).await;
        let started = Instant::now();
        let err = client(&server).create(&request()).await.unwrap_err();
        let took = started.elapsed();

        assert!(matches!(err, Error::Transport { timeout: true, .. }), "{stall:?}: {err:?}");
        assert!(took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT * 2, "{stall:?}: {took:?}");
        assert_eq!(server.creates(), 1, "{stall:?}");
        assert_eq!(server.tasks_created(), 1, "{stall:?}");
    }
}

#[tokio::test]
async fn stalled_server_on_poll_is_a_timeout_not_a_hang_and_a_later_poll_recovers() {
    // Without retries: one request, one timeout, within the configured request timeout.
    let server =
        Server::start(|base| Routes { poll: vec![Reply::Stall, succeeded(base)], ..Routes::happy(base) }).await;
    let no_retry = builder(&server).retry_policy(RetryPolicy::none()).build().unwrap();
    let started = Instant::now();
    let err = no_retry.get_task("t1").await.unwrap_err();
    assert!(matches!(err, Error::Transport { timeout: true, .. }), "{err:?}");
    assert!(started.elapsed() < REQUEST_TIMEOUT * 2, "{:?}", started.elapsed());

    // With the defaults a wait rides it out: the next poll answers.
    let task = client(&server).wait("t1").await.unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(server.polls(), 2);
    assert_eq!(server.tasks_created(), 0);
}

// ---- bodies ------------------------------------------------------------------------------

#[tokio::test]
async fn garbage_and_html_on_200_poll_are_retried() {
    let server = Server::start(|base| Routes {
        poll: vec![
            Reply::body(200, "text/html", "<html><body>Please wait…</body></html>"),
            Reply::body(200, "application/json", r#"{"id": "t1", "sta"#),
            Reply::body(200, "application/json", [0xff, 0xfe, 0x00, 0x7b]),
            succeeded(base),
        ],
        ..Routes::happy(base)
    })
    .await;
    // One `get_task` call rides them out: the poll itself is retried, not only the wait.
    let task = client(&server).get_task("t1").await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(server.polls(), 4);
    assert_eq!(server.tasks_created(), 0);
}

#[tokio::test]
async fn a_poll_spends_one_retry_budget_across_status_and_body_faults() {
    // 503s are retried in the hooks, unreadable 200s in `get_task`: both draw on the same three
    // retries, so the call sends four requests, not (1 + 3)².
    let garbage = Reply::body(200, "application/json", r#"{"id": "t1", "sta"#);
    let unavailable = Reply::json(503, json!({"error": {"message": "busy", "type": "upstream"}}));
    let script: Vec<Reply> = [unavailable, garbage].into_iter().cycle().take(16).collect();
    let server = Server::start(|base| Routes { poll: script, ..Routes::happy(base) }).await;

    let err = client(&server).get_task("t1").await.unwrap_err();

    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(server.polls(), 4);
    assert_eq!(server.tasks_created(), 0);
}

#[tokio::test]
async fn garbage_on_200_create_is_a_decode_error_not_a_retry() {
    let server = server(vec![Reply::body(200, "text/html", "<html><body>OK</body></html>")], vec![]).await;
    let err = client(&server).create(&request()).await.unwrap_err();

    assert!(matches!(&err, Error::Decode { body, .. } if body.contains("<html>")), "{err:?}");
    assert_eq!(server.creates(), 1, "a 200 means the task exists: no second create");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn html_and_garbage_error_pages_become_api_errors_with_the_status() {
    let html = Reply::body(502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>");
    let garbage = Reply::body(400, "application/octet-stream", [0x00, 0x01, 0xff, b'x']);
    let server = server(vec![html.clone()], vec![html, garbage]).await;
    let client = client(&server);

    let err = client.create(&request()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 502, code: None, body, .. } if body.contains("Bad Gateway")),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 502"), "{err}");

    // The poll's 502 page is retried; the 400 after it is final.
    let err = client.get_task("t1").await.unwrap_err();
    assert!(matches!(&err, Error::Api { status: 400, code: None, .. }), "{err:?}");
    assert_eq!((server.creates(), server.polls()), (1, 2));
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn empty_bodies_are_typed_errors_or_retried_polls() {
    let server = Server::start(|base| Routes {
        create: vec![Reply::body(200, "application/json", ""), Reply::body(401, "text/plain", "")],
        poll: vec![Reply::body(200, "application/json", ""), succeeded(base)],
        ..Routes::happy(base)
    })
    .await;
    let client = client(&server);

    let err = client.create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let err = client.create(&request()).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 401, .. }), "{err:?}");
    assert!(err.to_string().contains("empty body") && err.to_string().contains("API key"), "{err}");
    assert_eq!(client.wait("t1").await.unwrap().status, TaskStatus::Succeeded);
    assert_eq!((server.creates(), server.polls()), (2, 2));
    assert_eq!(server.tasks_created(), 1, "the 401 created nothing");
}

#[tokio::test]
async fn a_huge_error_body_is_not_read_into_memory() {
    let server = server(vec![Reply::Endless { status: 500 }], vec![]).await;
    let started = Instant::now();
    let err = client(&server).create(&request()).await.unwrap_err();
    let took = started.elapsed();

    assert!(matches!(&err, Error::Api { status: 500, body, .. } if body.chars().count() <= 513), "{err:?}");
    assert!(took < REQUEST_TIMEOUT, "answered from the first 64 KiB, not after reading it all: {took:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let streamed = server.streamed();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.streamed(), streamed, "the connection was closed: the server could write no more");
    assert!(streamed < 32 << 20, "only socket buffers' worth of a 1 GiB body was sent: {streamed} bytes");
    assert_eq!(server.creates(), 1);
    assert_eq!(server.tasks_created(), 1);
}

// ---- task states -------------------------------------------------------------------------

#[tokio::test]
async fn task_not_exist_briefly_is_waited_out() {
    let tne = Reply::task_not_exist();
    let server = Server::start(|base| Routes {
        poll: vec![tne.clone(), tne.clone(), tne, succeeded(base)],
        ..Routes::happy(base)
    })
    .await;
    let task = client(&server).generate(&request()).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(server.polls(), 4);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn task_not_exist_forever_becomes_task_not_found_after_the_grace() {
    let server = server(vec![Reply::created("t1")], vec![Reply::task_not_exist()]).await;
    let started = Instant::now();
    let err = client(&server).generate(&request()).await.unwrap_err();

    assert!(matches!(&err, Error::TaskNotFound { id, waited } if id == "t1" && *waited >= NOT_FOUND_GRACE), "{err:?}");
    assert!(started.elapsed() < NOT_FOUND_GRACE * 4, "{:?}", started.elapsed());
    // Polled on schedule, not hammered: one poll per 10 ms at most.
    assert!(server.polls() >= 2 && server.polls() <= 1 + (started.elapsed().as_millis() / 10) as usize);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn unknown_status_keeps_waiting() {
    let odd = Reply::task("t1", "DREAMING");
    let server =
        Server::start(|base| Routes { poll: vec![odd.clone(), odd, succeeded(base)], ..Routes::happy(base) }).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let options = wait_options().on_update(move |t| log.lock().unwrap().push(t.status.clone()));
    let task = client(&server).generate_with(&request(), &options).await.unwrap();

    assert_eq!(task.status, TaskStatus::Succeeded);
    let unknown = TaskStatus::Unknown("DREAMING".into());
    assert_eq!(*seen.lock().unwrap(), [unknown.clone(), unknown, TaskStatus::Succeeded]);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn failed_task_is_a_typed_error_and_polling_stops() {
    let failed = Reply::json(
        200,
        json!({"id": "t1", "status": "FAILED", "failure": "Image rejected", "failureCode": "SAFETY.INPUT.IMAGE"}),
    );
    let server = server(vec![Reply::created("t1")], vec![running(), failed]).await;
    let err = client(&server).generate(&request()).await.unwrap_err();

    assert!(matches!(&err, Error::TaskFailed { task } if task.failure.as_deref() == Some("Image rejected")), "{err:?}");
    assert_eq!(err.code(), Some("SAFETY.INPUT.IMAGE"));
    tokio::time::sleep(POLL * 5).await;
    assert_eq!(server.polls(), 2, "no poll after the terminal status");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn cancelled_task_is_a_typed_error_and_polling_stops() {
    let server = server(vec![Reply::created("t1")], vec![running(), Reply::task("t1", "CANCELLED")]).await;
    let err = client(&server).generate(&request()).await.unwrap_err();

    assert!(matches!(&err, Error::TaskCancelled { task } if task.id == "t1"), "{err:?}");
    tokio::time::sleep(POLL * 5).await;
    assert_eq!(server.polls(), 2, "no poll after the terminal status");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn a_task_that_never_finishes_ends_the_wait_at_its_timeout() {
    let server = server(vec![Reply::created("t1")], vec![running()]).await;
    let options = wait_options().timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = client(&server).generate_with(&request(), &options).await.unwrap_err();
    let took = started.elapsed();

    assert!(matches!(&err, Error::TimedOut { last: Some(t), .. } if t.status == TaskStatus::Running), "{err:?}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(500), "{took:?}");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn a_wait_on_a_server_that_never_answers_ends_at_the_wait_timeout() {
    // Every poll stalls; retries would take 4 x 300 ms per poll, the wait allows 450 ms in all.
    let server = server(vec![Reply::created("t1")], vec![Reply::Stall]).await;
    let options = wait_options().timeout(Duration::from_millis(450));
    let started = Instant::now();
    let err = client(&server).wait_with("t1", &options).await.unwrap_err();
    let took = started.elapsed();

    assert!(matches!(&err, Error::TimedOut { last: None, .. }), "{err:?}");
    assert!(took >= Duration::from_millis(450) && took < Duration::from_millis(750), "{took:?}");
    assert_eq!(server.tasks_created(), 0);
}

// ---- downloads ---------------------------------------------------------------------------

#[tokio::test]
async fn output_url_that_404s_is_a_download_error_and_leaves_no_file() {
    let server = Server::start(|base| Routes {
        file: vec![Reply::body(404, "text/html", "<html>Not Found</html>")],
        ..Routes::happy(base)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let client = client(&server);
    let task = client.generate(&request()).await.unwrap();
    let err = client.download(&task.output[0], dir.path().join("out.mp4")).await.unwrap_err();

    assert!(matches!(&err, Error::Download { message, .. } if message.contains("404")), "{err:?}");
    assert!(err.to_string().contains("expire"), "hints that output URLs expire: {err}");
    assert_empty(dir.path());
    assert_eq!(server.files(), 1);
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn download_cut_short_is_a_typed_error_and_leaves_no_partial_file() {
    let cut = [
        Reply::cut_short(100_000, 10_000),
        Reply::reset_mid_body(json!({"padding": "x".repeat(50_000)})),
        Reply::RawThenStall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nonly this".to_vec()),
    ];
    for reply in cut {
        let server = Server::start(|base| Routes { file: vec![reply.clone()], ..Routes::happy(base) }).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("{}/files/t1.mp4", server.base_url());
        let started = Instant::now();
        let err = client(&server).download(&url, dir.path().join("out.mp4")).await.unwrap_err();

        assert!(matches!(&err, Error::Download { .. }), "{err:?}");
        assert!(started.elapsed() < REQUEST_TIMEOUT * 2, "{:?}", started.elapsed());
        assert_empty(dir.path());
        assert_eq!(server.files(), 1);
        assert_eq!(server.tasks_created(), 0);
    }
}

#[tokio::test]
async fn an_interrupted_download_leaves_no_partial_file() {
    let stall = Reply::RawThenStall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nthe first bytes".to_vec());
    let server = Server::start(|base| Routes { file: vec![stall], ..Routes::happy(base) }).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/files/t1.mp4", server.base_url());
    let client = builder(&server).request_timeout(Duration::from_secs(10)).build().unwrap();
    let download = client.download(&url, dir.path().join("out.mp4"));

    // The caller gives up (drops the future) while the body is being written.
    let dropped = tokio::time::timeout(Duration::from_millis(100), download).await;
    assert!(dropped.is_err(), "still downloading when dropped");
    assert_eq!(server.files(), 1);
    assert_empty(dir.path());
}

#[tokio::test]
async fn an_existing_file_is_not_overwritten_unless_asked() {
    let server = Server::start(Routes::happy).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    std::fs::write(&target, b"precious").unwrap();
    let url = format!("{}/files/t1.mp4", server.base_url());
    let client = client(&server);

    let err = client.download(&url, &target).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "output", .. }), "{err:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    assert_eq!(server.files(), 0, "refused before fetching anything");

    let written = client.download_with(&url, &target, &DownloadOptions::default().overwrite(true)).await.unwrap();
    assert_eq!(written, VIDEO.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), VIDEO);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left beside it");
    assert_eq!(server.tasks_created(), 0);
}

#[tokio::test]
async fn a_stalled_download_is_bounded_by_its_own_timeout() {
    let stall = Reply::RawThenStall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nthe first bytes".to_vec());
    let server = Server::start(|base| Routes { file: vec![stall], ..Routes::happy(base) }).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/files/t1.mp4", server.base_url());
    let patient = builder(&server).request_timeout(Duration::from_secs(30)).build().unwrap();
    let options = DownloadOptions::default().timeout(Duration::from_millis(200));
    let started = Instant::now();
    let err = patient.download_with(&url, dir.path().join("out.mp4"), &options).await.unwrap_err();

    assert!(matches!(&err, Error::Download { message, .. } if message.contains("timed out")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    assert_empty(dir.path());
    assert_eq!(server.tasks_created(), 0);
}

#[tokio::test]
async fn a_server_that_never_accepts_is_a_connect_timeout_retried_without_a_task() {
    // A listener that never accepts, its queue filled: the kernel drops further handshakes.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(100), connect).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break, // the queue is full: handshakes now go unanswered
        }
    }
    let client = Client::builder()
        .api_key(KEY)
        .base_url(format!("http://{addr}"))
        .connect_timeout(Duration::from_millis(100))
        .request_timeout(Duration::from_secs(10))
        .retry_policy(RetryPolicy::default().max_retries(2).base_delay(Duration::from_millis(5)))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client.create(&request()).await.unwrap_err();
    let took = started.elapsed();

    assert!(matches!(err, Error::Transport { timeout: true, .. }), "{err:?}");
    // Retried (nothing was sent, so no task can exist): three connect timeouts, not one.
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");
    drop(listener); // never read a request: no task
}

// ---- the same faults from the simulator ------------------------------------------------------
//
// The simulator creates a task exactly when the real service would (a 5xx or garbage on create
// is answered *after* the task was created), so its `tasks_created` is the true count.

mod simulated {
    use super::*;
    use cometapi_runway::mock::{Fault, MockServer, MockServerBuilder, Route};

    /// A simulator whose tasks are visible from their second poll (count-based): the waits here
    /// have a short `task_not_exist` grace, shorter than the simulator's default 1 s window.
    fn sim() -> MockServerBuilder {
        MockServer::builder().not_found_polls(1)
    }

    async fn start(builder: MockServerBuilder) -> (MockServer, Client) {
        let server =
            builder.pending_for(Duration::from_millis(10)).running_for(Duration::from_millis(30)).start().await;
        let client = server
            .client()
            .request_timeout(REQUEST_TIMEOUT)
            .retry_policy(retry_policy())
            .wait_options(wait_options())
            .build()
            .unwrap();
        (server, client)
    }

    fn creates(server: &MockServer) -> usize {
        server.requests_on(Route::Create).len()
    }

    #[tokio::test]
    async fn rate_limit_with_retry_after_on_create() {
        let fault = Fault::RateLimit { times: 2, retry_after: Some(30) };
        let (server, client) = start(sim().fault_on(Route::Create, fault)).await;
        let started = Instant::now();
        let task = client.generate(&request()).await.unwrap();

        assert_eq!(task.status, TaskStatus::Succeeded);
        assert!(started.elapsed() >= 2 * MAX_RETRY_AFTER - Duration::from_millis(10), "{:?}", started.elapsed());
        assert_eq!((creates(&server), server.tasks_created()), (3, 1));
    }

    #[tokio::test]
    async fn rate_limit_without_retry_after_on_every_route() {
        let (server, client) = start(sim().fault(Fault::RateLimit { times: 3, retry_after: None })).await;
        let task = client.generate(&request()).await.unwrap();

        assert_eq!(task.status, TaskStatus::Succeeded);
        assert_eq!(server.tasks_created(), 1);
    }

    #[tokio::test]
    async fn server_errors_on_poll() {
        for status in [500, 502, 503, 504] {
            let fault = Fault::ServerError { status, times: 2, on: Route::Poll };
            let (server, client) = start(sim().fault(fault)).await;
            let task = client.generate(&request()).await.unwrap();

            assert_eq!(task.status, TaskStatus::Succeeded, "{status}");
            assert_eq!((creates(&server), server.tasks_created()), (1, 1), "{status}");
        }
    }

    #[tokio::test]
    async fn server_error_on_create_loses_the_answer_and_is_not_retried() {
        for status in [500, 502, 503, 504] {
            let fault = Fault::ServerError { status, times: 1, on: Route::Create };
            let (server, client) = start(sim().fault(fault)).await;
            let err = client.create(&request()).await.unwrap_err();

            assert_eq!(err.status(), Some(status), "{err:?}");
            // The task exists (the simulator created it, then failed the answer): a retry would
            // have made it two.
            assert_eq!((creates(&server), server.tasks_created()), (1, 1), "{status}");
        }
    }

    #[tokio::test]
    async fn garbage_and_html_on_poll() {
        let builder =
            sim().fault(Fault::GarbageBody { times: 2 }).fault(Fault::HtmlErrorPage { status: 502, times: 2 });
        let (server, client) = start(builder).await;
        let task = client.generate(&request()).await.unwrap();

        assert_eq!(task.status, TaskStatus::Succeeded);
        assert_eq!(server.tasks_created(), 1);
    }

    #[tokio::test]
    async fn garbage_on_create_is_a_decode_error_not_a_retry() {
        let (server, client) = start(sim().fault_on(Route::Create, Fault::GarbageBody { times: 1 })).await;
        let err = client.create(&request()).await.unwrap_err();

        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
        assert_eq!((creates(&server), server.tasks_created()), (1, 1));
    }

    #[tokio::test]
    async fn slow_create_times_out_without_retry() {
        let fault = Fault::Slow { delay: Duration::from_secs(2), times: 1 };
        let (server, client) = start(sim().fault_on(Route::Create, fault)).await;
        let err = client.create(&request()).await.unwrap_err();

        assert!(matches!(err, Error::Transport { timeout: true, .. }), "{err:?}");
        assert_eq!((creates(&server), server.tasks_created()), (1, 1));
    }

    #[tokio::test]
    async fn task_not_exist_briefly() {
        let (server, client) = start(sim().not_found_polls(4)).await;
        let task = client.generate(&request()).await.unwrap();

        assert_eq!(task.status, TaskStatus::Succeeded);
        assert_eq!(server.tasks_created(), 1);

        // By time since creation, as the real route does it: within the grace, ridden out.
        let (server, client) = start(MockServer::builder().invisible_for(Duration::from_millis(100))).await;
        let task = client.generate(&request()).await.unwrap();
        assert_eq!(task.status, TaskStatus::Succeeded);
        assert!(server.requests_on(Route::Poll).len() >= 2);
    }

    #[tokio::test]
    async fn failed_and_cancelled() {
        let failed = cometapi_runway::mock::Outcome::fail("SAFETY.INPUT.IMAGE", "flagged");
        let (server, client) = start(sim().outcome(failed)).await;
        let err = client.generate(&request()).await.unwrap_err();
        assert!(matches!(err, Error::TaskFailed { .. }) && err.code() == Some("SAFETY.INPUT.IMAGE"), "{err:?}");
        assert_eq!(server.tasks_created(), 1);

        let (server, client) = start(sim().outcome(cometapi_runway::mock::Outcome::Cancel)).await;
        let err = client.generate(&request()).await.unwrap_err();
        assert!(matches!(err, Error::TaskCancelled { .. }), "{err:?}");
        assert_eq!(server.tasks_created(), 1);
    }

    #[tokio::test]
    async fn output_url_that_fails() {
        let fault = Fault::ServerError { status: 404, times: 1, on: Route::Download };
        let (server, client) = start(sim().fault(fault)).await;
        let dir = tempfile::tempdir().unwrap();
        let task = client.generate(&request()).await.unwrap();
        let err = client.download(&task.output[0], dir.path().join("out.mp4")).await.unwrap_err();

        assert!(matches!(&err, Error::Download { message, .. } if message.contains("404")), "{err:?}");
        assert_empty(dir.path());
        assert_eq!(server.tasks_created(), 1);
    }
}
