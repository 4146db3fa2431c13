//! Many concurrent waits on one `Client` against the simulator.
//!
//! The simulator runs in a child process (this binary with `--serve-mock`), so the peak RSS
//! and the open sockets counted here are the client's alone. Connections to the simulator
//! are counted by sampling this process's sockets (`/proc/self/fd`, `/proc/self/net/tcp`) every
//! 2 ms.

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
    let port: u16 = base_url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("simulator port");

    let stop = Arc::new(AtomicBool::new(false));
    let peak_connections = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_connections.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(open_connections(port), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let waits = sizes.waits;
    let (create_time, wait_time, ok, polls) = rt.block_on(async move {
        let client = Client::builder()
            .api_key(DEFAULT_MOCK_KEY)
            // Plain http:// on loopback: HTTP/1.1, one connection per request in flight (the
            // service itself is reached over HTTPS, where ALPN picks HTTP/2 and one connection).
            .base_url(base_url)
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
    let peak = peak_connections.load(Ordering::Relaxed);
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
        "peak open connections to the simulator {peak} over HTTP/1.1 ({:.3}× the client's limit of {LIMIT}; \
         target ≤ 1.1×) {}",
        peak as f64 / LIMIT as f64,
        verdict(peak as f64 <= 1.1 * LIMIT as f64),
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

/// Open TCP connections of this process to `port` on loopback (the simulator): this process's
/// socket inodes, looked up in the kernel's TCP tables by remote port. Other sockets (the
/// runtime's own, the simulator's side) are not counted.
fn open_connections(port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| Some(l.to_string_lossy().strip_prefix("socket:[")?.strip_suffix(']')?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote_port =
                fields.get(2).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            remote_port == Some(port) && fields.get(9).is_some_and(|inode| inodes.contains(*inode))
        })
        .count()
}
