//! The CLI against an independent imitation of the service — the scripted server in `support/`,
//! which shares no code with the built-in simulator — so that the simulator cannot hide a quirk
//! both get wrong: plain or envelope shape, `task_not_exist` first, a 429 and a 5xx once, and
//! still the video, from exactly one task.
#![cfg(feature = "cli")]

mod cli_common;
mod support;

use std::path::Path;

use cli_common::command;
use serde_json::json;
use support::{Reply, Routes, Server, VIDEO};

const KEY: &str = "sk-independent";

/// The service's quirks in one script; `done` gives the final answer, in the shape under test,
/// for an output URL on this server.
fn quirky(base: &str, done: impl FnOnce(&str) -> Reply) -> Routes {
    let envelope = |status: &str, nested: &str, progress: &str| {
        Reply::json(
            200,
            json!({"code": "success", "message": "", "data": {
                "task_id": "t1", "action": "IMAGE_TO_VIDEO", "status": status, "fail_reason": "",
                "submit_time": 1773366766, "start_time": 0, "finish_time": 0, "progress": progress,
                "data": {"id": "t1", "status": nested, "createdAt": "2026-03-13T09:52:46+08:00"}}}),
        )
    };
    Routes {
        create: vec![
            Reply::json(429, json!({"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit"}}))
                .with_header("Retry-After", "0"),
            Reply::created("t1"),
        ],
        poll: vec![
            Reply::task_not_exist(),
            Reply::task_not_exist(),
            Reply::body(503, "text/html", "<html><body>503 Service Unavailable</body></html>"),
            envelope("QUEUED", "PENDING", "0%"),
            Reply::json(200, json!({"id": "t1", "status": "RUNNING", "progress": 0.4})),
            envelope("IN_PROGRESS", "RUNNING", "80%"),
            done(&format!("{base}/files/t1.mp4")),
        ],
        file: vec![Reply::body(200, "video/mp4", VIDEO.to_vec())],
    }
}

fn run_generate(server: &Server, dir: &Path) {
    command(dir)
        .args(["--base-url", server.base_url(), "--api-key", KEY, "--poll-interval", "10ms", "-q"])
        .args(["generate", "--image", "https://example.com/cat.jpg", "--output", "cat.mp4"])
        .assert()
        .success();
    assert_eq!(std::fs::read(dir.join("cat.mp4")).unwrap(), VIDEO);
    assert_eq!(server.creates(), 2, "the 429 is retried once");
    assert_eq!(server.tasks_created(), 1, "exactly one task");
    let files = server.requests().into_iter().filter(|r| r.path.starts_with("/files/")).collect::<Vec<_>>();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].header("authorization"), None, "the download carries no key");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn plain_shape_with_every_quirk_yields_the_video_from_one_task() {
    let rt = runtime();
    let done = |output: &str| Reply::json(200, json!({"id": "t1", "status": "SUCCEEDED", "output": [output]}));
    let server = rt.block_on(Server::start(|base| quirky(base, done)));
    let dir = tempfile::tempdir().unwrap();
    run_generate(&server, dir.path());
}

#[test]
fn envelope_shape_with_every_quirk_yields_the_video_from_one_task() {
    let rt = runtime();
    let done = |output: &str| {
        Reply::json(
            200,
            json!({"code": "success", "message": "", "data": {"task_id": "t1", "status": "SUCCESS", "progress": "100%",
                "data": {"id": "t1", "status": "SUCCEEDED", "output": [output]}}}),
        )
    };
    let server = rt.block_on(Server::start(|base| quirky(base, done)));
    let dir = tempfile::tempdir().unwrap();
    run_generate(&server, dir.path());
}
