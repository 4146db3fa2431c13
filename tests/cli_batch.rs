//! `cometapi-runway batch` end to end against the simulator, and the paid-task edges of the
//! single-task commands: every documented exit code, Ctrl-C, SIGKILL at random moments.
//!
//! The simulator runs on its own runtime inside the test process (so the test can count the
//! tasks it created); the binary is pointed at it with `--base-url` and `--api-key`.
#![cfg(all(feature = "cli", unix))]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command as StdCommand, Stdio},
    time::{Duration, Instant},
};

use cometapi_runway::mock::{Fault, MockServer, MockServerBuilder, Outcome, Route, SAMPLE_MP4};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::Value;
use tokio::runtime::Runtime;

mod cli_common;

use cli_common::{command, Sim, BIN};

fn quick() -> MockServerBuilder {
    MockServer::builder()
        .api_key("sk-batch")
        .not_found_polls(1)
        .pending_for(Duration::from_millis(20))
        .running_for(Duration::from_millis(80))
}

fn write_csv(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from("image,prompt,seed\n");
    for i in 0..n {
        text.push_str(&format!("https://example.com/{i}.jpg,\"shot {i}, slowly\",{i}\n"));
    }
    let path = dir.join("items.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    text(bytes).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn videos(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    v.sort();
    v
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".part"))
        .collect()
}

fn interrupt(child: &Child) {
    let status = StdCommand::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn batch_exit_0_every_item_saved_with_one_json_object_each_and_a_summary() {
    let sim = Sim::start(quick());
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(dir.path(), 4);
    let out = sim
        .cmd(dir.path())
        .args(["--json", "batch", "--input"])
        .arg(&input)
        .args(["--out-dir", "out"])
        .assert()
        .code(0);
    let objects = json_lines(&out.get_output().stdout);
    assert_eq!(objects.len(), 5, "{objects:?}");
    assert!(objects[..4].iter().all(|o| o["status"] == "saved" && o["task_id"].is_string()), "{objects:?}");
    assert_eq!(objects[4]["summary"]["saved"], 4);
    assert_eq!(sim.server.tasks_created(), 4);
    let files = videos(&dir.path().join("out"));
    assert_eq!(files.len(), 4);
    assert!(files.iter().all(|f| std::fs::read(f).unwrap() == SAMPLE_MP4));
    assert!(dir.path().join("out/batch-journal.jsonl").exists(), "the journal lives in the output folder");

    // The same command again: nothing sent, nothing paid.
    sim.server.clear_requests();
    sim.cmd(dir.path()).args(["batch", "--input"]).arg(&input).args(["--out-dir", "out"]).assert().code(0);
    assert!(sim.server.requests().is_empty());
}

#[test]
fn batch_exit_2_invalid_input_names_line_field_value_and_rule_and_sends_nothing() {
    let sim = Sim::start(quick());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("items.jsonl");
    std::fs::write(
        &input,
        "{\"image\":\"https://example.com/a.jpg\"}\n{\"image\":\"https://example.com/b.jpg\",\"duration\":7}\n\
         {\"image\":\"https://example.com/c.jpg\",\"colour\":\"red\"}\n",
    )
    .unwrap();
    let out = sim.cmd(dir.path()).args(["batch", "--input"]).arg(&input).args(["--out-dir", "out"]).assert().code(2);
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("line 2: duration \"7\": must be 5 or 10"), "{stderr}");
    assert!(stderr.contains("line 3: colour \"red\": unknown key"), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert!(sim.server.requests().is_empty());

    let out = sim
        .cmd(dir.path())
        .args(["--json", "batch", "--dry-run", "--input"])
        .arg(write_csv(dir.path(), 2))
        .args(["--out-dir", "out"])
        .assert()
        .code(0);
    assert_eq!(json_lines(&out.get_output().stdout).len(), 3, "two planned items and a summary");
    assert!(sim.server.requests().is_empty(), "--dry-run sends nothing");
}

#[test]
fn batch_exit_3_an_api_error_stops_the_run() {
    let sim = Sim::start(quick());
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(dir.path(), 5);
    let mut cmd = command(dir.path());
    cmd.args(["--base-url", sim.server.base_url(), "--api-key", "wrong-key", "--json", "batch", "--concurrency", "1"]);
    let out = cmd.arg("--input").arg(&input).args(["--out-dir", "out"]).assert().code(3);
    let objects = json_lines(&out.get_output().stdout);
    assert_eq!(objects.last().unwrap()["summary"]["exit_code"], 3, "{objects:?}");
    assert!(sim.server.requests_on(Route::Create).len() < 5, "stopped after the first refusal");
    assert_eq!(sim.server.tasks_created(), 0);

    // Even when the refused create was the last one to send.
    let one = write_csv(dir.path(), 1);
    let mut cmd = command(dir.path());
    cmd.args(["--base-url", sim.server.base_url(), "--api-key", "wrong-key", "batch", "--input"]);
    cmd.arg(&one).args(["--out-dir", "out1"]).assert().code(3);
}

#[test]
fn batch_exit_4_when_some_item_failed() {
    let sim = Sim::start(quick().outcome(Outcome::fail("SAFETY.INPUT.IMAGE", "flagged")));
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(dir.path(), 2);
    let out = sim
        .cmd(dir.path())
        .args(["--json", "batch", "--resubmit-failed", "--input"])
        .arg(&input)
        .args(["--out-dir", "out"])
        .assert()
        .code(4);
    let objects = json_lines(&out.get_output().stdout);
    assert_eq!(objects[0]["status"], "failed");
    assert_eq!(objects[0]["error"]["retry_may_help"], false, "{objects:?}");
    assert_eq!(sim.server.tasks_created(), 2, "SAFETY failures are not resubmitted");
}

#[test]
fn batch_exit_130_on_ctrl_c_keeps_the_journal_and_says_how_to_resume() {
    let sim = Sim::start(quick().running_for(Duration::from_secs(30)));
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(dir.path(), 3);
    let child = sim.spawn(dir.path(), &["--json", "batch", "--input", input.to_str().unwrap(), "--out-dir", "out"]);
    let started = Instant::now();
    while sim.server.tasks_created() < 3 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("resume with: cometapi-runway batch --input"), "{stderr}");
    let objects = json_lines(&out.stdout);
    assert_eq!(objects.last().unwrap()["summary"]["interrupted"], 3, "{objects:?}");
    let journal = std::fs::read_to_string(dir.path().join("out/batch-journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"created\"").count(), 3, "{journal}");
}

#[test]
fn batch_a_second_ctrl_c_exits_at_once_even_with_a_create_in_flight() {
    let sim = Sim::start(quick().fault_on(Route::Create, Fault::Slow { delay: Duration::from_secs(20), times: 1 }));
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(dir.path(), 1);
    let child = sim.spawn(dir.path(), &["batch", "--input", input.to_str().unwrap(), "--out-dir", "out"]);
    let started = Instant::now();
    while sim.server.requests_on(Route::Create).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(10), "did not wait for the slow create: {:?}", started.elapsed());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("exiting now") && stderr.contains("resume with"), "{stderr}");
    let journal = std::fs::read_to_string(dir.path().join("out/batch-journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 1, "only the intent: the rerun reports the item as uncertain: {journal}");
}

#[test]
fn generate_ctrl_c_while_the_create_is_in_flight_says_the_task_may_exist() {
    let sim = Sim::start(quick().fault_on(Route::Create, Fault::Slow { delay: Duration::from_secs(20), times: 1 }));
    let dir = tempfile::tempdir().unwrap();
    let child = sim.spawn(dir.path(), &["--json", "generate", "--image", "https://example.com/a.jpg"]);
    let started = Instant::now();
    while sim.server.requests_on(Route::Create).is_empty() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let objects = json_lines(&out.stdout);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["error"]["exit_code"], 130);
    assert!(objects[0]["error"]["message"].as_str().unwrap().contains("may have been created"), "{objects:?}");
}

#[test]
fn an_output_file_appearing_during_the_wait_is_not_exit_2_since_a_task_was_paid_for() {
    let sim = Sim::start(quick().running_for(Duration::from_millis(800)));
    let dir = tempfile::tempdir().unwrap();
    let child = sim.spawn(dir.path(), &["generate", "--image", "https://example.com/a.jpg", "--output", "cat.mp4"]);
    let started = Instant::now();
    while sim.server.tasks_created() == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(dir.path().join("cat.mp4"), b"precious").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("wait "), "says how to fetch it: {}", text(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("cat.mp4")).unwrap(), b"precious");
}

#[test]
fn a_download_that_stalls_ends_at_its_idle_timeout_not_the_request_cap() {
    let sim = Sim::start(quick().fault_on(Route::Download, Fault::Slow { delay: Duration::from_secs(20), times: 5 }));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = sim
        .cmd(dir.path())
        .args(["generate", "--image", "https://example.com/a.jpg", "--download-idle-timeout", "0.3"])
        .assert()
        .code(3);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(text(&out.get_output().stderr).contains("idle timeout"), "{}", text(&out.get_output().stderr));
}

#[test]
fn server_text_reaches_the_terminal_without_control_characters() {
    let sim = Sim::start(quick().outcome(Outcome::fail("INTERNAL", "bad \u{1b}[2J\u{1b}]0;owned\u{7} output")));
    let dir = tempfile::tempdir().unwrap();
    let out = sim.cmd(dir.path()).args(["generate", "--image", "https://example.com/a.jpg"]).assert().code(4);
    let stderr = text(&out.get_output().stderr);
    assert!(stderr.contains("bad ?[2J?]0;owned? output"), "{stderr}");
    assert!(!stderr.contains('\u{1b}') && !stderr.contains('\u{7}'), "{stderr:?}");
}

/// Kills the batch with SIGKILL at seeded random moments, rerunning it each time, then lets a
/// last run finish: no item paid for twice, every video whole, no partial file anywhere.
#[test]
fn sigkill_at_random_moments_never_pays_twice_nor_leaves_a_partial_file() {
    const ITEMS: usize = 10;
    const KILLS: usize = 16;
    let sim = Sim::start(
        MockServer::builder()
            .api_key("sk-batch")
            .not_found_polls(1)
            .pending_for(Duration::from_millis(30))
            .running_for(Duration::from_millis(250))
            // Slow answers widen the windows a kill can fall into (create sent, answer not yet read).
            .fault_on(Route::Create, Fault::Slow { delay: Duration::from_millis(80), times: 1000 })
            .fault_on(Route::Download, Fault::Slow { delay: Duration::from_millis(60), times: 1000 }),
    );
    let dir = tempfile::tempdir().unwrap();
    let input = write_csv(dir.path(), ITEMS);
    let out_dir = dir.path().join("out");
    let args = ["--json", "batch", "--concurrency", "2", "--input", input.to_str().unwrap(), "--out-dir", "out"];
    let mut rng = StdRng::seed_from_u64(0x5eed_0011);
    for _ in 0..KILLS {
        let mut child = sim.spawn(dir.path(), &args);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        assert!(sim.server.tasks_created() <= ITEMS, "a task was paid for twice");
    }
    let out = sim.cmd(dir.path()).args(args).assert();
    let out = out.get_output();
    let summary = json_lines(&out.stdout).last().unwrap()["summary"].clone();
    let uncertain = summary["uncertain"].as_u64().unwrap() as usize;
    let saved = (summary["saved"].as_u64().unwrap() + summary["already_saved"].as_u64().unwrap()) as usize;
    assert_eq!(saved + uncertain, ITEMS, "{summary}: {}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(if uncertain == 0 { 0 } else { 4 }));
    let created = sim.server.tasks_created();
    assert!(created >= saved && created <= ITEMS, "created {created}, saved {saved}, uncertain {uncertain}");
    let files = videos(&out_dir);
    assert_eq!(files.len(), saved, "{files:?}");
    assert!(files.iter().all(|f| std::fs::read(f).unwrap() == SAMPLE_MP4), "every file whole");
    assert!(leftovers(&out_dir).is_empty(), "{:?}", leftovers(&out_dir));
}

#[test]
fn mock_server_limits_creates_and_expires_output_urls_when_asked() {
    let mut child = StdCommand::new(BIN)
        .args(["--json", "mock-server", "--create-rate", "1:1", "--output-url-ttl", "200ms"])
        .args(["--invisible-for", "0s", "--pending-for", "0s", "--running-for", "50ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = KillOnDrop(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let address: Value = serde_json::from_str(&line).unwrap();
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let result = rt.block_on(async {
        use cometapi_runway::{Client, DownloadOptions, Error, ImageToVideo, RetryPolicy};
        let client = Client::builder()
            .api_key(address["api_key"].as_str().unwrap())
            .base_url(address["base_url"].as_str().unwrap())
            .allow_insecure_http(true)
            .retry_policy(RetryPolicy::none())
            .wait_options(MockServer::wait_options())
            .build()
            .unwrap();
        let request = ImageToVideo::new("https://example.com/a.jpg");
        let id = client.create(&request).await.unwrap();
        let limited = client.create(&request).await.unwrap_err();
        assert!(
            matches!(limited, Error::Api { status: 429, retry_after: Some(d), .. } if d >= Duration::from_secs(1)),
            "{limited:?}"
        );
        let task = client.wait(&id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stale = client.download(&task.output[0], dir.path().join("stale.mp4")).await.unwrap_err();
        assert!(stale.is_expired_output(), "{stale:?}");
        client.download_output(&task, dir.path().join("a.mp4"), &DownloadOptions::default()).await.unwrap()
    });
    assert_eq!(result, SAMPLE_MP4.len() as u64);
}

/// A child process that dies with the test, whatever the test's outcome.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
