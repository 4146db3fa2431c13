//! The API key goes to CometAPI and nowhere else: not into `Debug` or `Display` of any type, not
//! into errors, not into logs at any level, not to the host serving output videos, and not over
//! clear-text HTTP beyond loopback unless the caller insists.
//!
//! Each test uses a unique marker key and asserts that neither it nor a distinctive fragment of
//! it shows up; each also asserts the key *was* in play (sent to the server, or logs were
//! captured), so none can pass vacuously.

#[cfg(feature = "cli")]
mod cli_common;
mod support;

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use cometapi_runway::{
    mock::{MockServer, Outcome, Route},
    Client, Error, ImageToVideo, RetryPolicy,
};

/// A key nobody else uses; its fragment is checked too, in case a key is printed cut.
const MARKER: &str = "sk-marker-7f3c9a1e5b2d4c6f8a0b";
const FRAGMENT: &str = "7f3c9a1e";

fn assert_no_key(what: &str, text: &str) {
    assert!(!text.contains(MARKER) && !text.contains(FRAGMENT), "the key leaked into {what}: {text}");
}

fn request() -> ImageToVideo {
    ImageToVideo::new("https://example.com/cat.jpg").prompt_text("the cat yawns")
}

/// A port nothing listens on: connecting to it is refused.
fn refused_base_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A client holding the marker key, pointed at a refused port, with no retries.
fn refused_client() -> Client {
    Client::builder().api_key(MARKER).base_url(refused_base_url()).retry_policy(RetryPolicy::none()).build().unwrap()
}

/// Everything every subscriber writes, at TRACE, including `log` records from dependencies.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static CAPTURE: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || support::LogBuffer(writer.clone()))
            .try_init() // also routes the `log` crate (reqwest, hyper-util) into the capture
            .expect("the only global subscriber in this test binary");
        buffer
    })
}

#[tokio::test]
async fn the_key_never_appears_in_debug_or_display_of_the_client_and_its_builder() {
    let builder = Client::builder().api_key(MARKER).base_url("https://api.cometapi.com");
    assert_no_key("ClientBuilder Debug", &format!("{builder:?} {builder:#?}"));
    let client = builder.build().unwrap();
    assert_no_key("Client Debug", &format!("{client:?} {client:#?}"));
    assert_no_key("generated client Debug", &format!("{:?}", client.raw()));
    assert!(format!("{client:?}").contains("api.cometapi.com"), "Debug is not empty");
}

#[tokio::test]
async fn the_key_never_appears_in_errors() {
    let mut errors: Vec<Error> = Vec::new();
    // A key the header cannot carry is refused without echoing it.
    errors.push(
        Client::builder().api_key(format!("{MARKER}\nX-Injected: 1")).base_url("https://x.test").build().unwrap_err(),
    );
    // Clear text to a remote host is refused, key or not.
    errors.push(Client::builder().api_key(MARKER).base_url("http://api.cometapi.com").build().unwrap_err());
    // 401: the simulator expects another key.
    let server = MockServer::start().await;
    let wrong_key = server.client().api_key(MARKER).build().unwrap();
    let unauthorized = wrong_key.create(&request()).await.unwrap_err();
    assert!(matches!(unauthorized, Error::Api { status: 401, .. }), "{unauthorized:?}");
    let sent = server.requests();
    assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {MARKER}").as_str()), "the key was in play");
    errors.push(unauthorized);
    errors.push(wrong_key.get_task("some-task").await.unwrap_err());
    // Transport errors: refused, and timed out.
    let refused = refused_client();
    errors.push(refused.create(&request()).await.unwrap_err());
    let slow = MockServer::builder()
        .api_key(MARKER)
        .fault(cometapi_runway::mock::Fault::Slow { delay: Duration::from_secs(5), times: 1 })
        .start()
        .await;
    let impatient =
        slow.client().request_timeout(Duration::from_millis(100)).retry_policy(RetryPolicy::none()).build().unwrap();
    errors.push(impatient.create(&request()).await.unwrap_err());

    assert!(errors.iter().any(|e| matches!(e, Error::Transport { timeout: true, .. })), "{errors:?}");
    assert!(errors.iter().any(|e| matches!(e, Error::Transport { timeout: false, .. })), "{errors:?}");
    for e in &errors {
        assert_no_key("an error", &format!("{e} | {e:?} | {e:#?}"));
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            assert_no_key("an error source", &format!("{s} | {s:?}"));
            source = s.source();
        }
    }
}

#[tokio::test]
async fn the_key_never_appears_in_trace_output() {
    let capture = captured();
    let server = MockServer::builder().api_key(MARKER).start().await;
    let client = server.client().build().unwrap();
    let dir = tempfile::tempdir().unwrap();

    let task = client.generate(&request()).await.unwrap();
    client.download(&task.output[0], dir.path().join("out.mp4")).await.unwrap();
    let _ = server.client().api_key("sk-another").build().unwrap().create(&request()).await.unwrap_err();
    let refused = refused_client();
    let _ = refused.get_task("t1").await.unwrap_err();

    let logs = String::from_utf8_lossy(&capture.lock().unwrap()).into_owned();
    // Not vacuous: the key was sent, and the requests, retries and downloads were logged.
    assert!(server.requests().iter().any(|r| r.header("authorization") == Some(&format!("Bearer {MARKER}"))));
    for expected in ["TRACE", "DEBUG", "cometapi request", "create_image_to_video", "get_task", "downloaded"] {
        assert!(logs.contains(expected), "the capture has no {expected:?}: {logs}");
    }
    assert_no_key("the TRACE log", &logs);
}

#[tokio::test]
async fn downloads_never_carry_the_authorization_header() {
    let server = MockServer::builder().api_key(MARKER).start().await;
    let client = server.client().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let task = client.generate(&request()).await.unwrap();
    client.download(&task.output[0], dir.path().join("out.mp4")).await.unwrap();

    let api = server.requests_on(Route::Api);
    let files = server.requests_on(Route::Download);
    assert!(!api.is_empty() && api.iter().all(|r| r.header("authorization") == Some(&format!("Bearer {MARKER}"))));
    assert_eq!(files.len(), 1);
    assert!(files[0].headers.get("authorization").is_none(), "{:?}", files[0].headers);
    for r in &files {
        assert_no_key("download request headers", &format!("{:?}", r.headers));
    }
}

#[tokio::test]
async fn plain_http_beyond_loopback_is_refused_unless_allowed() {
    for url in ["http://api.cometapi.com", "http://10.1.2.3:8080", "http://[2001:db8::1]/"] {
        let err = Client::builder().api_key(MARKER).base_url(url).build().unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { field: "base_url", .. }), "{url}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(url.trim_end_matches('/')) && text.contains("https://"), "{url}: {text}");
        assert!(text.contains("allow insecure HTTP explicitly"), "{url}: says how to override: {text}");
        assert_no_key("the base_url error", &text);
        let allowed = Client::builder().api_key(MARKER).base_url(url).allow_insecure_http(true).build();
        assert!(allowed.is_ok(), "{url}: allowed when asked");
    }
    for url in ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9", "https://api.cometapi.com"] {
        assert!(Client::builder().api_key(MARKER).base_url(url).build().is_ok(), "{url}");
    }
}

#[tokio::test]
async fn a_failed_task_error_carries_no_key() {
    let server = MockServer::builder()
        .api_key(MARKER)
        .outcome(Outcome::fail("SAFETY.INPUT.IMAGE", "The input image was flagged"))
        .start()
        .await;
    let err = server.client().build().unwrap().generate(&request()).await.unwrap_err();
    assert!(matches!(err, Error::TaskFailed { .. }), "{err:?}");
    assert_no_key("a task error", &format!("{err} {err:?}"));
}

// ---- the CLI ---------------------------------------------------------------------------------

/// Needs the binary, built with `--features cli` (the README's test command).
#[cfg(feature = "cli")]
mod cli {
    use super::*;

    use crate::cli_common::command as cli;

    /// Runs the binary and returns (success, stdout + stderr).
    fn run(cmd: &mut assert_cmd::Command) -> (bool, String) {
        let out = cmd.output().unwrap();
        let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    #[test]
    fn the_cli_never_prints_the_key_at_any_verbosity() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime.block_on(
            MockServer::builder()
                .api_key(MARKER)
                .pending_for(Duration::from_millis(20))
                .running_for(Duration::from_millis(60))
                .start(),
        );
        let dir = tempfile::tempdir().unwrap();
        for (n, verbosity) in ["-v", "-vv", "-vvv"].into_iter().enumerate() {
            let output = format!("cat-{n}.mp4");
            // The key once as a flag, once from the environment.
            let mut cmd = cli(dir.path());
            cmd.args([verbosity, "--base-url", server.base_url(), "--poll-interval", "10ms", "generate"]).args([
                "--image",
                "https://example.com/cat.jpg",
                "--prompt",
                "the cat yawns",
                "--output",
                &output,
            ]);
            if n % 2 == 0 {
                cmd.args(["--api-key", MARKER]);
            } else {
                cmd.env("COMETAPI_KEY", MARKER);
            }
            let (ok, text) = run(&mut cmd);
            assert!(ok, "{verbosity}: {text}");
            assert!(dir.path().join(&output).exists(), "{verbosity}: the video was downloaded");
            assert!(text.contains("cometapi request"), "{verbosity}: requests were traced: {text}");
            assert_no_key(&format!("the CLI's output at {verbosity}"), &text);
        }
        // Failing paths print errors: a rejected key, a refused connection, both as text and JSON.
        for json in [false, true] {
            let mut cmd = cli(dir.path());
            cmd.args([
                "-vv",
                "--base-url",
                server.base_url(),
                "--api-key",
                &format!("{MARKER}-revoked"),
                "status",
                "t1",
            ]);
            if json {
                cmd.arg("--json");
            }
            let (ok, text) = run(&mut cmd);
            assert!(!ok && text.contains("401"), "{text}");
            assert_no_key("the CLI's 401 error", &text);

            let mut cmd = cli(dir.path());
            cmd.args(["-vv", "--base-url", &refused_base_url(), "--api-key", MARKER, "status", "t1"]);
            if json {
                cmd.arg("--json");
            }
            let (ok, text) = run(&mut cmd);
            assert!(!ok && !text.trim().is_empty(), "{text}");
            assert_no_key("the CLI's transport error", &text);
        }
        let sent = server.requests();
        assert!(
            sent.iter().any(|r| r.header("authorization") == Some(&format!("Bearer {MARKER}"))),
            "the key was in play"
        );
        let files = server.requests_on(Route::Download);
        assert_eq!(files.len(), 3);
        assert!(files.iter().all(|r| r.headers.get("authorization").is_none()), "the CLI's downloads carry no key");
    }
}
