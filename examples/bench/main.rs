//! The benchmark harness behind `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release --features cli --example bench -- [--smoke] [polling] [scale] [overhead] [batch]
//! ```
//!
//! Sections (all by default):
//! - `polling`: the SDK's default poll policy (with nothing learned, and after 100 tasks) against
//!   the official SDKs' fixed 6 s ± 1.5 s and a 2 s-then-5 s peer, over sets of 1,000 simulated
//!   tasks in virtual time;
//! - `sequence`: 100 tasks one after another on one client that learns from each;
//! - `scale`: 10,000 concurrent waits on one `Client` against the simulator: wall time, peak RSS,
//!   peak open sockets;
//! - `overhead`: `Client::get_task` against the same GET with bare reqwest + serde, at
//!   concurrency 1 and 64;
//! - `batch`: 1,000 items through `Client::batch` against a simulator limiting creates to 50/s:
//!   wall time against the ideal (items ÷ R plus one render), 429s absorbed.
//! - `realtime` (only when named): a few tasks through the CLI binary against
//!   `cometapi-runway mock-server` with realistic times, in real time (a few minutes), default
//!   policy against a fixed 6 s schedule.
//!
//! `--smoke` runs every default section with tiny sizes (for CI: it must run, not meet a time).

mod batch;
mod overhead;
mod polling;
mod realtime;
mod scale;
mod stats;

const SECTIONS: [&str; 6] = ["polling", "sequence", "scale", "overhead", "batch", "realtime"];
/// Run unless named: `realtime` takes minutes of wall time.
const DEFAULT_SECTIONS: [&str; 5] = ["polling", "sequence", "scale", "overhead", "batch"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-mock") {
        let ms = |i: usize| args.get(i).and_then(|a| a.parse().ok()).expect("--serve-mock PENDING_MS RUNNING_MS");
        return scale::serve_mock(ms(1), ms(2));
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut sections: Vec<&str> = args.iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    if let Some(unknown) = sections.iter().find(|s| !SECTIONS.contains(s)) {
        eprintln!("unknown section {unknown:?}; sections: {}", SECTIONS.join(", "));
        std::process::exit(2);
    }
    if let Some(flag) = args.iter().find(|a| a.starts_with("--") && *a != "--smoke") {
        eprintln!("unknown option {flag:?}; usage: bench [--smoke] [{}]", SECTIONS.join("] ["));
        std::process::exit(2);
    }
    if sections.is_empty() {
        sections = DEFAULT_SECTIONS.to_vec();
    }

    machine(smoke);
    // Scale runs before overhead so that its peak RSS is not the overhead section's.
    let mut correct = true;
    for section in SECTIONS.iter().filter(|s| sections.contains(s)) {
        match *section {
            "polling" => polling::run(if smoke { 100 } else { 1_000 }, if smoke { 1 } else { 5 }, !smoke),
            "sequence" => polling::run_sequence(if smoke { 10 } else { 100 }),
            "realtime" => correct &= realtime::run(smoke),
            "scale" => correct &= scale::run(if smoke { &scale::SMOKE } else { &scale::FULL }),
            "overhead" => overhead::run(if smoke { &overhead::SMOKE } else { &overhead::FULL }, !smoke),
            "batch" => correct &= batch::run(if smoke { &batch::SMOKE } else { &batch::FULL }),
            _ => unreachable!("checked above"),
        }
    }
    // Missed performance targets are reported, not failed on; wrong results fail the run.
    if !correct {
        eprintln!("some waits or batch items did not end in success");
        std::process::exit(1);
    }
}

/// What the figures were measured on.
fn machine(smoke: bool) {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("?", |m| m.trim_start_matches([' ', '\t', ':']));
    let meminfo = read("/proc/meminfo");
    let memory = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).map_or("?", str::trim);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# cometapi-runway benchmarks{}", if smoke { " (smoke: tiny sizes, figures meaningless)" } else { "" });
    println!("\nmachine: {cpus} CPUs ({model}), {memory} memory; load average {}", read("/proc/loadavg").trim());
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; run with --release for figures worth reading");
    }
}
