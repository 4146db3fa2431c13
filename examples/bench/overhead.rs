//! Per-request overhead: `Client::get_task` against the same GET made with a bare
//! `reqwest::Client` and serde, both against one tiny in-process server answering a fixed task.
//!
//! The server runs on its own thread and runtime; the clients share one current-thread runtime
//! on another thread, so a client's CPU time per request can be read from that thread's
//! scheduler statistics. Variants run alternately within each round (the starting one rotates),
//! so machine noise lands on all of them; each figure is the median over the rounds, and each
//! ratio the median of the per-round ratios.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use axum::{http::header, routing::get, Router};
use cometapi_runway::{types, Client, TaskStatus, DEFAULT_RUNWAY_VERSION};
use serde::Deserialize;

use crate::stats::{heading, median, quantile, sorted, us, verdict};

/// A typical poll answer: a running task in Runway's plain shape.
const TASK_JSON: &str = r#"{"id":"d0658ae1-5e2a-4a53-9a5c-1f1d8a0c2b7e","status":"RUNNING","createdAt":"2026-05-01T12:47:47.351Z","progress":0.42}"#;
const TASK_ID: &str = "d0658ae1-5e2a-4a53-9a5c-1f1d8a0c2b7e";
const KEY: &str = "bench-key";

pub struct Sizes {
    /// Requests per variant per round, at concurrency 1 and 64.
    pub requests: [usize; 2],
    pub rounds: usize,
}

pub const FULL: Sizes = Sizes { requests: [500, 4_000], rounds: 61 };
pub const SMOKE: Sizes = Sizes { requests: [50, 200], rounds: 2 };

/// The same fields as the SDK's `Task`, straight from the plain shape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read only by serde: the point is the decoding
struct BareTask {
    id: String,
    status: String,
    progress: Option<f64>,
    #[serde(default)]
    output: Vec<String>,
    failure: Option<String>,
    failure_code: Option<String>,
    created_at: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// reqwest + serde into `BareTask`: the baseline.
    Bare,
    /// reqwest + serde into the generated `TaskResponse` (the untagged two-shape enum).
    BareGenerated,
    /// The generated client through the crate's hooks, without `Task` normalisation.
    Raw,
    /// `Client::get_task`: what users call.
    Sdk,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Bare => "bare reqwest + serde",
            Variant::BareGenerated => "  bare + generated TaskResponse decode",
            Variant::Raw => "  generated client via hooks (no Task)",
            Variant::Sdk => "SDK Client::get_task",
        }
    }
}

struct Clients {
    sdk: Client,
    bare: reqwest::Client,
    url: String,
    authorization: header::HeaderValue,
}

impl Clients {
    async fn call(&self, variant: Variant) {
        match variant {
            Variant::Bare => {
                let task: BareTask = self.bare_get().await.json().await.expect("bare decode");
                assert_eq!(task.status, "RUNNING");
            }
            Variant::BareGenerated => {
                let task: types::TaskResponse = self.bare_get().await.json().await.expect("generated decode");
                assert!(matches!(task, types::TaskResponse::RunwayTask(_)));
            }
            Variant::Raw => {
                let task = self
                    .sdk
                    .raw()
                    .get_task()
                    .id(TASK_ID)
                    .x_runway_version(DEFAULT_RUNWAY_VERSION)
                    .send()
                    .await
                    .expect("raw get_task");
                assert!(matches!(task.into_inner(), types::TaskResponse::RunwayTask(_)));
            }
            Variant::Sdk => {
                let task = self.sdk.get_task(TASK_ID).await.expect("get_task");
                assert_eq!(task.status, TaskStatus::Running);
            }
        }
    }

    /// The request the SDK sends, header for header.
    async fn bare_get(&self) -> reqwest::Response {
        self.bare
            .get(&self.url)
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(header::ACCEPT, "application/json")
            .header("x-runway-version", DEFAULT_RUNWAY_VERSION)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("bare GET")
    }
}

/// One variant's figures in one round.
#[derive(Clone, Copy)]
struct Round {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    cpu_us: f64,
}

pub fn run(sizes: &Sizes, breakdown: bool) {
    heading("Per-request overhead: SDK get_task vs bare reqwest + serde");
    let base_url = start_server();
    println!("in-process server at {base_url}, answering {} bytes of plain task JSON", TASK_JSON.len());
    let rounds = sizes.rounds;
    let requests = sizes.requests;
    // The clients run on one thread so that its CPU time is theirs alone.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
        rt.block_on(measure(base_url, requests, rounds, breakdown));
    })
    .join()
    .expect("overhead thread");
}

async fn measure(base_url: String, requests: [usize; 2], rounds: usize, breakdown: bool) {
    let sdk = Client::builder().api_key(KEY).base_url(&base_url).build().expect("SDK client");
    // The SDK's own reqwest settings (see `ClientBuilder::build`), so only its layer differs.
    let bare = reqwest::Client::builder()
        .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()
        .expect("bare client");
    let clients = Clients {
        sdk,
        bare,
        url: format!("{base_url}/runwayml/v1/tasks/{TASK_ID}"),
        authorization: header::HeaderValue::from_str(&format!("Bearer {KEY}")).expect("header value"),
    };
    let variants: &[Variant] = if breakdown {
        &[Variant::Bare, Variant::Sdk, Variant::BareGenerated, Variant::Raw]
    } else {
        &[Variant::Bare, Variant::Sdk]
    };

    for (concurrency, n) in [(1, requests[0]), (64, requests[1])] {
        // Warm-up: connections opened, allocator and caches settled.
        for &v in variants {
            round(&clients, v, n.min(500), concurrency).await;
        }
        let mut results: Vec<Vec<Round>> = vec![Vec::new(); variants.len()];
        for r in 0..rounds {
            for k in 0..variants.len() {
                let i = (k + r) % variants.len();
                results[i].push(round(&clients, variants[i], n, concurrency).await);
            }
        }
        report(concurrency, n, rounds, variants, &results);
    }
}

/// `n` requests from `concurrency` loops sharing a counter.
async fn round(clients: &Clients, variant: Variant, n: usize, concurrency: usize) -> Round {
    let next = AtomicUsize::new(0);
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let workers = (0..concurrency).map(|_| async {
        let mut latencies = Vec::with_capacity(n / concurrency + 1);
        while next.fetch_add(1, Ordering::Relaxed) < n {
            let t = Instant::now();
            clients.call(variant).await;
            latencies.push(us(t.elapsed()));
        }
        latencies
    });
    let latencies: Vec<f64> = futures_util::future::join_all(workers).await.concat();
    let wall = started.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu_before);
    let latencies = sorted(&latencies);
    Round {
        rps: n as f64 / wall.as_secs_f64(),
        p50_us: quantile(&latencies, 0.5),
        p99_us: quantile(&latencies, 0.99),
        cpu_us: us(cpu) / n as f64,
    }
}

fn report(concurrency: usize, n: usize, rounds: usize, variants: &[Variant], results: &[Vec<Round>]) {
    println!("\nconcurrency {concurrency}: {n} requests per variant per round, {rounds} rounds (medians)");
    println!("{:<42} {:>10} {:>10} {:>10} {:>16}", "", "req/s", "p50 µs", "p99 µs", "client CPU µs/req");
    for (v, rs) in variants.iter().zip(results) {
        let m = |f: fn(&Round) -> f64| median(&rs.iter().map(f).collect::<Vec<_>>());
        println!(
            "{:<42} {:>10.0} {:>10.1} {:>10.1} {:>16.1}",
            v.label(),
            m(|r| r.rps),
            m(|r| r.p50_us),
            m(|r| r.p99_us),
            m(|r| r.cpu_us)
        );
    }
    // Paired per-round ratios: SDK (index 1) over bare (index 0).
    let ratio = |f: fn(&Round) -> f64| {
        median(&results[1].iter().zip(&results[0]).map(|(s, b)| f(s) / f(b)).collect::<Vec<_>>())
    };
    let (p50, p99, rps, cpu) = (ratio(|r| r.p50_us), ratio(|r| r.p99_us), ratio(|r| r.rps), ratio(|r| r.cpu_us));
    println!(
        "SDK / bare: latency p50 {p50:.3}×, p99 {p99:.3}×; throughput {rps:.3}×; client CPU per request {cpu:.2}×"
    );
    println!(
        "target (c={concurrency}): latency ≤ 1.05× — p50 {}, p99 {}; throughput ≥ 0.95× — {}",
        verdict(p50 <= 1.05),
        verdict(p99 <= 1.05),
        verdict(rps >= 0.95)
    );
}

/// The calling thread's CPU time so far (scheduler statistics, nanosecond resolution).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Starts the fixed-answer server on its own thread and runtime; returns its base URL.
fn start_server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("report address");
            let app = Router::new().route(
                "/runwayml/v1/tasks/{id}",
                get(|| async { ([(header::CONTENT_TYPE, "application/json")], TASK_JSON) }),
            );
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("server address"))
}
