//! Real time, through the CLI: a few tasks with realistic timings (3 s pending, 20–90 s running,
//! linear progress, the first poll answered `task_not_exist`) against `cometapi-runway
//! mock-server`, each waited on by the `cometapi-runway` binary: the default policy and a fixed
//! 6 s schedule side by side, then the default again with what the first round taught the CLI
//! (its learned file, in a temporary cache folder). Checks the virtual-time figures against real
//! clocks. The CLI keeps what it learned per base URL and each simulator has its own port, so
//! round 2 sees one task per base URL, fewer than learning needs: it measures a fresh CLI
//! again (printed after round 1). Needs the binary built beside this harness (`cargo build --release --features cli`).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Instant,
};

use crate::stats::{heading, median, verdict};

const PENDING: f64 = 3.0;
const RUNNING: [f64; 3] = [20.0, 45.0, 90.0];
const SMOKE_RUNNING: [f64; 3] = [0.5, 1.0, 1.5];

/// One simulator process, stopped when dropped.
struct Simulator {
    child: Child,
    base_url: String,
    key: String,
    finishes_after: f64,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_simulator(bin: &Path, pending: f64, running: f64) -> Simulator {
    let mut child = Command::new(bin)
        .args(["--json", "--quiet", "mock-server", "--pending-for", &format!("{pending}s")])
        .args(["--running-for", &format!("{running}s")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cometapi-runway mock-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("simulator address");
    let v: serde_json::Value = serde_json::from_str(&line).expect("mock-server --json prints one object");
    let field = |k: &str| v[k].as_str().expect("base_url and api_key").to_string();
    Simulator { base_url: field("base_url"), key: field("api_key"), child, finishes_after: pending + running }
}

struct Run {
    polls: usize,
    lag: f64,
    ok: bool,
}

/// `generate` through the binary: polls counted from its `-v` request log, lag from its exit.
fn generate(bin: &Path, sim: &Simulator, cache: &Path, fixed: bool) -> std::thread::JoinHandle<Run> {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("XDG_CACHE_HOME", cache)
        .env("HOME", cache)
        .args(["-v", "--base-url", &sim.base_url, "--api-key", &sim.key])
        .args(["generate", "--image", "https://example.com/cat.jpg", "--no-download", "--timeout", "5m"]);
    if fixed {
        cmd.args(["--poll-interval", "6s"]);
    }
    let finishes_after = sim.finishes_after;
    std::thread::spawn(move || {
        let started = Instant::now();
        let out = cmd.output().expect("run cometapi-runway generate");
        let took = started.elapsed().as_secs_f64();
        let log = String::from_utf8_lossy(&out.stderr);
        let polls = log.lines().filter(|l| l.contains("cometapi request") && l.contains("get_task")).count();
        Run { polls, lag: took - finishes_after, ok: out.status.success() }
    })
}

/// What the CLI's cache folder holds: finished tasks per base URL. Each simulator listens on
/// its own port, so each is its own base URL to the CLI, and a kind is used only after three
/// tasks: with one task per simulator, round 2 starts from nothing usable.
fn learned_per_base_url(cache: &Path) -> String {
    let file = cache.join("cometapi-runway").join("learned.json");
    let parsed: Option<serde_json::Value> = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let Some(by_url) = parsed.as_ref().and_then(|v| v["by_base_url"].as_object()) else {
        return "nothing".to_string();
    };
    let counts: Vec<String> = by_url
        .values()
        .filter_map(|l| serde_json::from_value::<cometapi_runway::Learned>(l.clone()).ok())
        .map(|l| l.tasks().to_string())
        .collect();
    format!(
        "{} base URL(s), finished tasks each: {} (a client uses what it learned from 3)",
        counts.len(),
        counts.join(", ")
    )
}

fn binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join(format!("cometapi-runway{}", std::env::consts::EXE_SUFFIX));
    bin.exists().then_some(bin)
}

/// Returns whether every task succeeded.
pub fn run(smoke: bool) -> bool {
    heading("Real time, through the CLI");
    let Some(bin) = binary() else {
        println!("the cometapi-runway binary is not built beside this harness: run `cargo build --release --features cli` first");
        return false;
    };
    let running = if smoke { SMOKE_RUNNING } else { RUNNING };
    let pending = if smoke { 0.2 } else { PENDING };
    println!(
        "{} tasks per round, pending {pending} s, running {running:?} s, progress linear, first poll task_not_exist; \
         binary {}",
        running.len(),
        bin.display()
    );
    let cache = tempfile::tempdir().expect("temporary cache folder");
    let empty = tempfile::tempdir().expect("temporary cache folder");
    let sims: Vec<Simulator> = running.iter().map(|&r| start_simulator(&bin, pending, r)).collect();
    let mut ok = true;
    let mut rows = Vec::new();
    // Round 1: nothing learned (the default teaches `cache`); the fixed schedule alongside.
    // Round 2: the default with what round 1 taught it.
    for (round, label) in [(1, "nothing learned"), (2, "learned (round 1)")] {
        let default: Vec<_> = sims.iter().map(|s| generate(&bin, s, cache.path(), false)).collect();
        let fixed: Vec<_> =
            if round == 1 { sims.iter().map(|s| generate(&bin, s, empty.path(), true)).collect() } else { Vec::new() };
        let default: Vec<Run> = default.into_iter().map(|h| h.join().expect("run")).collect();
        let fixed: Vec<Run> = fixed.into_iter().map(|h| h.join().expect("run")).collect();
        ok &= default.iter().chain(&fixed).all(|r| r.ok);
        rows.push((format!("SDK default, {label}"), default));
        if round == 1 {
            println!("after round 1 the CLI's cache holds {}", learned_per_base_url(cache.path()));
        }
        if !fixed.is_empty() {
            rows.push(("fixed 6 s (--poll-interval 6s)".to_string(), fixed));
        }
    }
    println!("\n{:<34} {:>12} {:>12} {:>24}", "policy", "polls", "lag p50 s", "per task: polls / lag s");
    for (name, runs) in &rows {
        let polls: usize = runs.iter().map(|r| r.polls).sum();
        let lags: Vec<f64> = runs.iter().map(|r| r.lag).collect();
        let each: Vec<String> = runs.iter().map(|r| format!("{}/{:.2}", r.polls, r.lag)).collect();
        println!("{name:<34} {polls:>12} {:>12.2} {:>24}", median(&lags), each.join(" "));
    }
    let total = |i: usize| rows[i].1.iter().map(|r| r.polls).sum::<usize>() as f64;
    for (i, which) in [(0, "nothing learned"), (2, "learned")] {
        let ratio = total(i) / total(1);
        let p50 = median(&rows[i].1.iter().map(|r| r.lag).collect::<Vec<_>>());
        println!(
            "default ({which}) / fixed 6 s: polls {ratio:.3}× (target ≤ 0.5×) {}, lag p50 {p50:.2} s (target ≤ 1.0 s) {}",
            verdict(ratio <= 0.5),
            verdict(p50 <= 1.0)
        );
    }
    println!("(lag: from the simulated finish to the CLI's exit, which includes starting the process)");
    ok
}
