//! Many concurrent waits on one `Client` against the simulator.
//!
//! The simulator runs in a child process (this binary with `--serve-mock`), so the peak RSS
//! and the open sockets counted here are the client's alone. Sockets are counted by sampling
//! `/proc/self/fd` every 2 ms.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use cometapi_runway::{mock::DEFAULT_MOCK_KEY, Client, ImageToVideo, TaskStatus, WaitOptions};

use crate::stats::{heading, verdict};

/// Requests in flight allowed on the client: `ClientBuilder`'s default.
const LIMIT: usize = 64;

pub struct Sizes {
    pub waits: usize,
    pub pending: Duration,
    pub running: Duration,
}

pub const FULL: Sizes = Sizes { waits: 10_000, pending: Duration::from_secs(1), running: Duration::from_secs(4) };
pub const SMOKE: Sizes = Sizes { waits: 200, pending: Duration::from_millis(200), running: Duration::from_millis(800) };

/// Returns whether every wait ended in success with the right task.
pub fn run(sizes: &Sizes) -> bool {
    heading(&format!("Scale: {} concurrent waits on one Client against the simulator", sizes.waits));
    println!(
        "simulator in a child process: pending {:?}, running {:?} with progress, no task_not_exist; \
         client defaults (max {LIMIT} requests in flight, default poll policy)",
        sizes.pending, sizes.running
    );
    let rss_before = status_kb("VmHWM:");
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(["--serve-mock", &sizes.pending.as_millis().to_string(), &sizes.running.as_millis().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the simulator process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("child stdout")).read_line(&mut line).expect("simulator address");
    let base_url = line.trim().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let peak_sockets = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_sockets.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(open_sockets(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let waits = sizes.waits;
    let (create_time, wait_time, ok, polls) = rt.block_on(async move {
        let client = Client::builder()
            .api_key(DEFAULT_MOCK_KEY)
            .base_url(&base_url)
            .max_concurrent_requests(LIMIT)
            .build()
            .expect("client");
        let request = ImageToVideo::new("https://example.com/cat.jpg").prompt_text("the cat yawns");
        let started = Instant::now();
        let ids = futures_util::future::join_all((0..waits).map(|_| client.create(&request))).await;
        let ids: Vec<String> = ids.into_iter().map(|id| id.expect("create")).collect();
        let create_time = started.elapsed();

        let polls = Arc::new(AtomicUsize::new(0));
        let options = {
            let polls = polls.clone();
            WaitOptions::default().on_update(move |_| {
                polls.fetch_add(1, Ordering::Relaxed);
            })
        };
        let started = Instant::now();
        let tasks = futures_util::future::join_all(ids.iter().map(|id| client.wait_with(id, &options))).await;
        let wait_time = started.elapsed();
        let ok = tasks
            .iter()
            .zip(&ids)
            .filter(|(t, id)| {
                t.as_ref().is_ok_and(|t| &t.id == *id && t.status == TaskStatus::Succeeded && !t.output.is_empty())
            })
            .count();
        (create_time, wait_time, ok, polls.load(Ordering::Relaxed))
    });
    drop(rt);
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    drop(child.stdin.take()); // the simulator exits when its stdin closes
    let _ = child.wait();

    let rss = status_kb("VmHWM:");
    let peak = peak_sockets.load(Ordering::Relaxed);
    println!(
        "create {waits} tasks: {:.2} s ({:.0}/s)",
        create_time.as_secs_f64(),
        waits as f64 / create_time.as_secs_f64()
    );
    println!(
        "wait for all {waits} at once: {:.2} s wall, {polls} polls ({:.2} per task)",
        wait_time.as_secs_f64(),
        polls as f64 / waits as f64
    );
    println!("succeeded with output: {ok} / {waits} {}", verdict(ok == waits));
    println!(
        "peak RSS (VmHWM) {:.1} MB (before this section {:.1} MB; target ≤ 150 MB) {}",
        rss as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        verdict(rss <= 150 * 1024)
    );
    println!(
        "peak open sockets {peak} (target ≤ {LIMIT}, the requests-in-flight limit) {}; bound: ≤ {LIMIT} in flight \
         (each holding its permit until its body is read) + an idle pool capped at {LIMIT} = ≤ {} sockets; \
         the excess over {LIMIT} is hyper-util racing a new connect against a pool checkout while a just-freed \
         connection is being returned",
        verdict(peak <= LIMIT),
        2 * LIMIT
    );
    ok == waits
}

/// Runs the simulator until stdin closes, printing its base URL first (`--serve-mock`).
pub fn serve_mock(pending_ms: u64, running_ms: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let server = cometapi_runway::mock::MockServer::builder()
            .not_found_polls(0)
            .pending_for(Duration::from_millis(pending_ms))
            .running_for(Duration::from_millis(running_ms))
            .start()
            .await;
        println!("{}", server.base_url());
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await.ok();
        drop(server);
    });
}

/// A line of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
                .count()
        })
        .unwrap_or(0)
}
