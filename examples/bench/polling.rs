//! Poll policies in virtual time: simulated tasks are functions of time, and each wait drives
//! `PollPolicy::next_delay` and `PollState::record` exactly as `Client::wait` does (pause, poll,
//! record progress only while running, stop at a terminal status or the 10-minute timeout).
//! No sockets: the network is not modelled, a poll answers at the instant it is made.

use std::time::Duration;

use cometapi_runway::{PollPolicy, PollState};
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
    let mut rng = StdRng::seed_from_u64(SEED);
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
}

/// `Client::wait`'s loop (src/wait.rs `Waiter::step`), against a simulated task.
async fn wait(task: &SimTask, policy: &PollPolicy) -> Outcome {
    let started = Instant::now();
    let deadline = started + TIMEOUT;
    let mut state = PollState::default();
    let mut polls = 0;
    loop {
        let pause = policy.next_delay(&state);
        if Instant::now() + pause >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Outcome { polls, lag: None };
        }
        tokio::time::sleep(pause).await;
        let elapsed = started.elapsed();
        polls += 1;
        match task.observe(elapsed.as_secs_f64()) {
            Seen::Succeeded => return Outcome { polls, lag: Some(elapsed.as_secs_f64() - task.finish()) },
            Seen::Pending => state.record(elapsed, None),
            Seen::Running(progress) => state.record(elapsed, progress),
        }
    }
}

#[derive(Clone, Copy)]
struct Figures {
    polls: f64,
    p50: f64,
    p95: f64,
    mean_lag: f64,
    timeouts: usize,
}

/// Every task of the set waited on at once, in paused (virtual) time.
fn simulate(tasks: &[SimTask], policy: &PollPolicy) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
    let outcomes = rt.block_on(futures_util::future::join_all(tasks.iter().map(|t| wait(t, policy))));
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

fn policies() -> [(&'static str, PollPolicy); 3] {
    [
        ("SDK default (ETA)", PollPolicy::default()),
        ("fixed 6 s ± 1.5 s from 6 s", PollPolicy::fixed(Duration::from_secs(6)).jitter(0.25)),
        ("2 s, then every 5 s", PollPolicy::fixed(Duration::from_secs(5)).first_delay(Duration::from_secs(2))),
    ]
}

/// Each figure is the median over `reps` runs (the policies' jitter differs between runs).
fn table(title: &str, tasks: &[SimTask], reps: usize) -> Vec<Figures> {
    println!("\n{title}");
    println!("{:<30} {:>11} {:>12} {:>12} {:>13}", "policy", "polls/task", "lag p50 s", "lag p95 s", "lag mean s");
    policies()
        .iter()
        .map(|(name, policy)| {
            let runs: Vec<Figures> = (0..reps).map(|_| simulate(tasks, policy)).collect();
            let m = |f: fn(&Figures) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let f = Figures {
                polls: m(|f| f.polls),
                p50: m(|f| f.p50),
                p95: m(|f| f.p95),
                mean_lag: m(|f| f.mean_lag),
                timeouts: runs.iter().map(|f| f.timeouts).max().unwrap_or(0),
            };
            let timeouts = if f.timeouts > 0 { format!("  ({} timed out)", f.timeouts) } else { String::new() };
            println!("{name:<30} {:>11.2} {:>12.2} {:>12.2} {:>13.2}{timeouts}", f.polls, f.p50, f.p95, f.mean_lag);
            f
        })
        .collect()
}

pub fn run(n: usize, reps: usize, sensitivity: bool) {
    heading("Poll policy in virtual time");
    println!(
        "{n} tasks (seed {SEED}): pending 2–15 s, running 20–180 s; lag = completion → detection; \
         medians of {reps} runs"
    );
    let with = table("progress reported while running:", &task_set(n, (20.0, 180.0), true), reps);
    let ratio = with[0].polls / with[1].polls;
    println!("default / fixed 6 s polls: {ratio:.3}× (target ≤ 0.5×) {}", verdict(ratio <= 0.5));
    println!(
        "default lag p50 {:.2} s (target ≤ 1.0 s) {}; p95 {:.2} s (target ≤ 2.5 s) {}",
        with[0].p50,
        verdict(with[0].p50 <= 1.0),
        with[0].p95,
        verdict(with[0].p95 <= 2.5)
    );

    let without = table("progress never reported:", &task_set(n, (20.0, 180.0), false), reps);
    let ratio = without[0].polls / without[1].polls;
    println!(
        "default / fixed 6 s: polls {ratio:.3}× (target ≤ 1) {}; lag p50 {:.2} s vs {:.2} s (target: no worse) {}",
        verdict(ratio <= 1.0),
        without[0].p50,
        without[1].p50,
        verdict(without[0].p50 <= without[1].p50)
    );

    if sensitivity {
        println!(
            "\nOther render-time distributions (no targets; the no-progress cadence assumes renders of 20 s – 3 min):"
        );
        for (running, label) in
            [((1.0, 10.0), "running 1–10 s"), ((20.0, 60.0), "running 20–60 s"), ((60.0, 300.0), "running 60–300 s")]
        {
            table(&format!("{label}, progress reported:"), &task_set(n, running, true), reps);
            table(&format!("{label}, progress never reported:"), &task_set(n, running, false), reps);
        }
    }
}
