//! Poll policies in virtual time: simulated tasks are functions of time, and each wait drives
//! `PollPolicy::next_delay` and `PollState` exactly as `Client::wait` does (pause, poll, record
//! what the poll saw, stop at a terminal status, poll once at the 10-minute deadline), and
//! learns from each success into a `Learned` as the client does. No sockets: the network is not
//! modelled, a poll answers at the instant it is made.

use std::time::Duration;

use cometapi_runway::{Learned, PollPolicy, PollState};
use rand::{rngs::StdRng, Rng, SeedableRng};
use tokio::time::Instant;

use crate::stats::{heading, mean, median, quantile, sorted, verdict};

/// The seed of the task set: fixed, so every run sees the same tasks (the policies' own jitter
/// is not seeded, as in real use).
const SEED: u64 = 20_260_501;
/// `WaitOptions::default()`'s timeout.
const TIMEOUT: Duration = Duration::from_secs(600);

/// One simulated task, as the poll route would report it at any time since creation.
struct SimTask {
    pending: f64,
    running: f64,
    /// Progress follows `x^curve` of the fraction of running time `x`: not quite linear.
    curve: f64,
    wobble: (f64, f64, f64),
    noise_seed: u64,
    reports_progress: bool,
}

enum Seen {
    Pending,
    Running(Option<f64>),
    Succeeded,
}

impl SimTask {
    fn finish(&self) -> f64 {
        self.pending + self.running
    }

    fn observe(&self, t: f64) -> Seen {
        if t >= self.finish() {
            return Seen::Succeeded;
        }
        if t < self.pending {
            return Seen::Pending;
        }
        if !self.reports_progress {
            return Seen::Running(None);
        }
        let x = (t - self.pending) / self.running;
        let (amplitude, frequency, phase) = self.wobble;
        let wobble = amplitude * (std::f64::consts::TAU * frequency * x + phase).sin();
        let noise = StdRng::seed_from_u64(self.noise_seed ^ (t * 1000.0) as u64).random_range(-0.01..=0.01);
        // Reported in whole percents, never 100 % before the task has succeeded.
        let p = (x.powf(self.curve) + wobble + noise).clamp(0.0, 0.99);
        Seen::Running(Some((p * 100.0).round() / 100.0))
    }
}

/// `n` tasks: pending 2–15 s, running in `running` seconds, progress roughly linear (exponent
/// 0.9–1.1, a slow wobble of up to ±2 %, ±1 % noise per report, whole percents).
fn task_set(n: usize, running: (f64, f64), reports_progress: bool) -> Vec<SimTask> {
    tasks(SEED, n, running, reports_progress)
}

fn tasks(seed: u64, n: usize, running: (f64, f64), reports_progress: bool) -> Vec<SimTask> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| SimTask {
            pending: rng.random_range(2.0..15.0),
            running: rng.random_range(running.0..running.1),
            curve: rng.random_range(0.9..1.1),
            wobble: (
                rng.random_range(0.0..0.02),
                rng.random_range(1.0..3.0),
                rng.random_range(0.0..std::f64::consts::TAU),
            ),
            noise_seed: rng.random(),
            reports_progress,
        })
        .collect()
}

struct Outcome {
    polls: u32,
    /// From completion to the poll that saw it; `None` when the wait timed out.
    lag: Option<f64>,
    /// What the client learns from it: when it started running and finished, as estimated.
    learned: Option<(Option<f64>, f64)>,
}

/// `Client::wait`'s loop (src/wait.rs `Waiter::step`), against a simulated task.
async fn wait(task: &SimTask, policy: &PollPolicy, learned: &Learned) -> Outcome {
    let started = Instant::now();
    let deadline = started + TIMEOUT;
    let mut state = PollState::expecting(learned.expected(Some(KIND)));
    let mut polls = 0;
    loop {
        let pause = policy.next_delay(&state);
        let last = Instant::now() + pause >= deadline;
        tokio::time::sleep_until(if last { deadline } else { Instant::now() + pause }).await;
        let elapsed = started.elapsed();
        polls += 1;
        // BENCH_TRACE=1: each wait's poll times, and the task's start and finish.
        if std::env::var_os("BENCH_TRACE").is_some() {
            eprint!(" {:.1}", elapsed.as_secs_f64());
            if matches!(task.observe(elapsed.as_secs_f64()), Seen::Succeeded) {
                eprintln!("  | start {:.1} finish {:.1}", task.pending, task.finish());
            }
        }
        match task.observe(elapsed.as_secs_f64()) {
            Seen::Succeeded => {
                let learned = Some((state.started(), state.finished(elapsed)));
                return Outcome { polls, lag: Some(elapsed.as_secs_f64() - task.finish()), learned };
            }
            Seen::Pending => state.record_pending(elapsed),
            Seen::Running(progress) => state.record_running(elapsed, progress),
        }
        if last {
            return Outcome { polls, lag: None, learned: None };
        }
    }
}

/// The kind every simulated task has (one model and duration).
const KIND: &str = "gen4_turbo/5";

#[derive(Clone, Copy)]
struct Figures {
    polls: f64,
    p50: f64,
    p95: f64,
    mean_lag: f64,
    timeouts: usize,
}

fn figures(outcomes: &[Outcome]) -> Figures {
    let polls: Vec<f64> = outcomes.iter().map(|o| o.polls as f64).collect();
    let lags = sorted(&outcomes.iter().filter_map(|o| o.lag).collect::<Vec<_>>());
    Figures {
        polls: mean(&polls),
        p50: quantile(&lags, 0.5),
        p95: quantile(&lags, 0.95),
        mean_lag: mean(&lags),
        timeouts: outcomes.iter().filter(|o| o.lag.is_none()).count(),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime")
}

/// Every task of the set waited on at once, in paused (virtual) time, by a client that had
/// learned `learned` before.
fn simulate(tasks: &[SimTask], policy: &PollPolicy, learned: &Learned) -> Figures {
    let outcomes =
        paused_runtime().block_on(futures_util::future::join_all(tasks.iter().map(|t| wait(t, policy, learned))));
    figures(&outcomes)
}

/// The tasks one after another on one client, learning from each: every task's outcome.
fn sequence(tasks: &[SimTask], policy: &PollPolicy, learned: &mut Learned) -> Vec<Outcome> {
    let rt = paused_runtime();
    tasks
        .iter()
        .map(|t| {
            let outcome = rt.block_on(wait(t, policy, learned));
            if let Some((started, finished)) = outcome.learned {
                learned.record(Some(KIND), started, finished);
            }
            outcome
        })
        .collect()
}

/// What a client has learned after waiting on 100 tasks like these, one after another (tasks
/// of another seed than the measured ones).
fn warmed(running: (f64, f64), reports_progress: bool) -> Learned {
    let mut learned = Learned::default();
    sequence(&tasks(SEED + 1, 100, running, reports_progress), &PollPolicy::default(), &mut learned);
    learned
}

fn policies() -> [(&'static str, PollPolicy); 3] {
    [
        ("SDK default", PollPolicy::default()),
        ("fixed 6 s ± 1.5 s from 6 s", PollPolicy::fixed(Duration::from_secs(6)).jitter(0.25)),
        ("2 s, then every 5 s", PollPolicy::fixed(Duration::from_secs(5)).first_delay(Duration::from_secs(2))),
    ]
}

/// The figures of one set: the default policy fresh and learned, and the peers' schedules. Each
/// figure is the median over `reps` runs (the policies' jitter differs between runs). Returns
/// `[default fresh, default learned, fixed 6 s, 2 s then 5 s]`.
fn table(title: &str, running: (f64, f64), reports_progress: bool, n: usize, reps: usize) -> Vec<Figures> {
    println!("\n{title}");
    println!("{:<34} {:>11} {:>12} {:>12} {:>13}", "policy", "polls/task", "lag p50 s", "lag p95 s", "lag mean s");
    let tasks = task_set(n, running, reports_progress);
    let learned = warmed(running, reports_progress);
    let fresh = Learned::default();
    let [default, fixed, peer] = policies();
    let rows = [
        ("SDK default, nothing learned", &default.1, &fresh),
        ("SDK default, learned (100 tasks)", &default.1, &learned),
        (fixed.0, &fixed.1, &fresh),
        (peer.0, &peer.1, &fresh),
    ];
    rows.iter()
        .map(|(name, policy, learned)| {
            let runs: Vec<Figures> = (0..reps).map(|_| simulate(&tasks, policy, learned)).collect();
            let m = |f: fn(&Figures) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let f = Figures {
                polls: m(|f| f.polls),
                p50: m(|f| f.p50),
                p95: m(|f| f.p95),
                mean_lag: m(|f| f.mean_lag),
                timeouts: runs.iter().map(|f| f.timeouts).max().unwrap_or(0),
            };
            let timeouts = if f.timeouts > 0 { format!("  ({} timed out)", f.timeouts) } else { String::new() };
            println!("{name:<34} {:>11.2} {:>12.2} {:>12.2} {:>13.2}{timeouts}", f.polls, f.p50, f.p95, f.mean_lag);
            f
        })
        .collect()
}

/// The render-time sets: `(running s, label, progress target)`.
const SETS: [((f64, f64), &str); 4] = [
    ((1.0, 10.0), "running 1–10 s"),
    ((20.0, 60.0), "running 20–60 s"),
    ((20.0, 180.0), "running 20–180 s"),
    ((60.0, 300.0), "running 60–300 s"),
];

pub fn run(n: usize, reps: usize, all_sets: bool) {
    heading("Poll policy in virtual time");
    println!(
        "{n} tasks per set (seed {SEED}), waited on at once: pending 2–15 s, then running; lag = completion → \
         detection; medians of {reps} runs. \"learned\": the client first waited on 100 other tasks of the \
         set, one after another (seed {})",
        SEED + 1
    );
    let sets: &[((f64, f64), &str)] = if all_sets { &SETS } else { &SETS[2..3] };
    for &(running, label) in sets {
        let with = table(&format!("{label}, progress reported:"), running, true, n, reps);
        for (i, which) in [(0, "nothing learned"), (1, "learned")] {
            let ratio = with[i].polls / with[2].polls;
            let target = running.0 >= 20.0;
            println!(
                "  default ({which}) / fixed 6 s: polls {ratio:.3}×, lag p50 {:.2} s vs {:.2} s{}",
                with[i].p50,
                with[2].p50,
                if target {
                    format!(" (target ≤ 0.5×, p50 ≤ 1.0 s) {}", verdict(ratio <= 0.5 && with[i].p50 <= 1.0))
                } else {
                    format!(
                        " (target: no more polls, no worse p50) {}",
                        verdict(ratio <= 1.0 && with[i].p50 <= with[2].p50)
                    )
                }
            );
        }
        let without = table(&format!("{label}, progress never reported:"), running, false, n, reps);
        for (i, which) in [(0, "nothing learned"), (1, "learned")] {
            let ratio = without[i].polls / without[2].polls;
            println!(
                "  default ({which}) / fixed 6 s: polls {ratio:.3}×, lag p50 {:.2} s vs {:.2} s (target: no more \
                 polls, no worse p50) {}",
                without[i].p50,
                without[2].p50,
                verdict(ratio <= 1.0 && without[i].p50 <= without[2].p50)
            );
        }
    }
}

/// Sequence mode: `n` tasks one after another on one client that learns from each, per set.
pub fn run_sequence(n: usize) {
    heading("Poll policy, tasks one after another (virtual time)");
    println!(
        "{n} tasks (seed {SEED}) waited on one at a time by one client, learning from each; figures over the \
         tasks after the first 5; progress reported"
    );
    println!("\n{:<20} {:<28} {:>11} {:>12} {:>12}", "set", "policy", "polls/task", "lag p50 s", "lag p95 s");
    for &(running, label) in &SETS {
        let tasks = task_set(n, running, true);
        let mut results = Vec::new();
        for (name, policy) in policies().into_iter().take(2) {
            let outcomes = sequence(&tasks, &policy, &mut Learned::default());
            let f = figures(&outcomes[5.min(outcomes.len())..]);
            println!("{label:<20} {name:<28} {:>11.2} {:>12.2} {:>12.2}", f.polls, f.p50, f.p95);
            results.push(f);
        }
        if running == (20.0, 180.0) {
            println!(
                "  default after 5 tasks: {:.2} polls per task (target ≤ 3.5) {}, lag p50 {:.2} s (target ≤ 1.0 s) {}",
                results[0].polls,
                verdict(results[0].polls <= 3.5),
                results[0].p50,
                verdict(results[0].p50 <= 1.0)
            );
        }
    }
}
