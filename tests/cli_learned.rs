//! The CLI keeps what it learned about task timings across runs, in the user's cache folder:
//! per base URL, opt-out by flag or environment, and a corrupt file is never an error.
#![cfg(feature = "cli")]

use std::{path::Path, process::Output, time::Duration};

use cometapi_runway::mock::MockServer;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cometapi-runway");

/// `generate --no-download` against `server` with `cache` as the cache folder.
fn generate(server: &MockServer, cache: &Path, extra: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .env_clear()
        .env("XDG_CACHE_HOME", cache)
        .args(["--base-url", server.base_url(), "--api-key", server.api_key(), "--poll-interval", "10ms"])
        .args(extra)
        .args(["generate", "--image", "https://example.com/cat.jpg", "--no-download"])
        .output()
        .unwrap()
}

fn learned_file(cache: &Path) -> std::path::PathBuf {
    cache.join("cometapi-runway").join("learned.json")
}

fn tasks_learned(cache: &Path, base_url: &str) -> usize {
    let file: Value = serde_json::from_slice(&std::fs::read(learned_file(cache)).unwrap()).unwrap();
    file["by_base_url"][base_url]["all"]["finished"].as_array().map_or(0, Vec::len)
}

fn server(rt: &tokio::runtime::Runtime) -> MockServer {
    rt.block_on(
        MockServer::builder().pending_for(Duration::from_millis(20)).running_for(Duration::from_millis(60)).start(),
    )
}

#[test]
fn each_run_adds_what_it_learned_to_the_cache_file_for_its_base_url() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = server(&rt);
    let cache = tempfile::tempdir().unwrap();
    for run in 1..=2 {
        let out = generate(&server, cache.path(), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(tasks_learned(cache.path(), server.base_url()), run);
    }
}

#[test]
fn no_learn_by_flag_or_environment_leaves_no_file() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = server(&rt);
    let cache = tempfile::tempdir().unwrap();
    assert!(generate(&server, cache.path(), &["--no-learn"]).status.success());
    let out = std::process::Command::new(BIN)
        .env_clear()
        .env("XDG_CACHE_HOME", cache.path())
        .env("COMETAPI_RUNWAY_NO_LEARN", "1")
        .args(["--base-url", server.base_url(), "--api-key", server.api_key(), "--poll-interval", "10ms"])
        .args(["generate", "--image", "https://example.com/cat.jpg", "--no-download"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!learned_file(cache.path()).exists());
}

#[test]
fn a_corrupt_file_starts_fresh_and_is_replaced() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = server(&rt);
    let cache = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(learned_file(cache.path()).parent().unwrap()).unwrap();
    std::fs::write(learned_file(cache.path()), b"\x00not json{{").unwrap();
    let out = generate(&server, cache.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tasks_learned(cache.path(), server.base_url()), 1);
}
