//! When to poll next: an ETA from observed progress when the task reports it, capped backoff
//! when it does not, never faster than a floor, always with jitter.

use std::time::Duration;

use rand::Rng;

/// The schedule of polls while waiting for a task.
///
/// The default predicts completion from the task's reported progress and polls just after the
/// predicted finish; without progress it backs off from 1 s to a 5 s cap. It never polls more
/// often than its floor (1 s) and spreads polls with ±10 % jitter.
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::PollPolicy;
/// // Tests and local simulators want millisecond polls:
/// let fast = PollPolicy::fixed(Duration::from_millis(5));
/// // A peer-like fixed schedule:
/// let every_6s = PollPolicy::fixed(Duration::from_secs(6)).first_delay(Duration::from_secs(6));
/// # let _ = (fast, every_6s);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    first_delay: Duration,
    initial_interval: Duration,
    max_interval: Duration,
    factor: f64,
    floor: Duration,
    jitter: f64,
    eta: bool,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_delay: Duration::from_secs(1),
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(5),
            factor: 1.5,
            floor: Duration::from_secs(1),
            jitter: 0.1,
            eta: true,
        }
    }
}

/// What the waiter has seen so far, for the policy to decide on.
#[derive(Debug, Clone, Default)]
pub struct PollState {
    /// Polls made so far.
    pub polls: u32,
    /// Time since waiting began.
    pub elapsed: Duration,
    /// `(elapsed, progress)` for every poll that reported progress, oldest first (at most 16 kept).
    pub progress: Vec<(Duration, f64)>,
}

impl PollState {
    pub(crate) fn record(&mut self, elapsed: Duration, progress: Option<f64>) {
        self.polls += 1;
        self.elapsed = elapsed;
        if let Some(p) = progress {
            if self.progress.len() == 16 {
                self.progress.remove(1); // keep the first sample: it anchors the rate
            }
            self.progress.push((elapsed, p));
        }
    }
}

impl PollPolicy {
    /// Poll every `interval` (no backoff, no ETA), with the floor lowered to match.
    pub fn fixed(interval: Duration) -> Self {
        PollPolicy {
            first_delay: interval,
            initial_interval: interval,
            max_interval: interval,
            factor: 1.0,
            floor: interval,
            jitter: 0.0,
            eta: false,
        }
    }

    /// The pause before the first poll.
    pub fn first_delay(mut self, d: Duration) -> Self {
        self.first_delay = d;
        self
    }

    /// Backoff from `initial` by `factor` per poll up to `max`, when no ETA is available.
    pub fn backoff(mut self, initial: Duration, factor: f64, max: Duration) -> Self {
        self.initial_interval = initial;
        self.factor = factor.max(1.0);
        self.max_interval = max;
        self
    }

    /// Never poll more often than this (default 1 s).
    pub fn floor(mut self, d: Duration) -> Self {
        self.floor = d;
        self
    }

    /// Spread each pause by up to ± this fraction (default 0.1; clamped to 0..=0.5).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 0.5);
        self
    }

    /// Predict completion from progress (default on).
    pub fn eta(mut self, yes: bool) -> Self {
        self.eta = yes;
        self
    }

    /// The pause before the next poll.
    pub fn next_delay(&self, state: &PollState) -> Duration {
        let base = if state.polls == 0 {
            self.first_delay
        } else if let Some(eta) = self.eta.then(|| estimate_remaining(&state.progress)).flatten() {
            eta.min(self.max_interval.max(self.floor) * 4)
        } else {
            let steps = state.polls.saturating_sub(1).min(64) as i32;
            self.initial_interval.mul_f64(self.factor.powi(steps)).min(self.max_interval)
        };
        self.jittered(base).max(self.floor)
    }

    fn jittered(&self, d: Duration) -> Duration {
        if self.jitter == 0.0 {
            return d;
        }
        d.mul_f64(rand::rng().random_range(1.0 - self.jitter..=1.0 + self.jitter))
    }
}

/// Time from the last sample until progress reaches 1 at the rate observed so far, plus a
/// small margin so the poll lands after the finish rather than just before it.
fn estimate_remaining(samples: &[(Duration, f64)]) -> Option<Duration> {
    let (&(t0, p0), &(t1, p1)) = (samples.first()?, samples.last()?);
    if t1 <= t0 || p1 <= p0 {
        return None;
    }
    let rate = (p1 - p0) / (t1 - t0).as_secs_f64();
    let remaining = ((1.0 - p1) / rate).max(0.0);
    Some(Duration::from_secs_f64(remaining * 1.05 + 0.25))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(polls: u32, progress: &[(u64, f64)]) -> PollState {
        PollState {
            polls,
            elapsed: Duration::from_secs(progress.last().map_or(0, |p| p.0)),
            progress: progress.iter().map(|&(s, p)| (Duration::from_secs(s), p)).collect(),
        }
    }

    #[test]
    fn estimator_projects_the_observed_rate_to_completion() {
        let eta = estimate_remaining(&[(Duration::from_secs(10), 0.1), (Duration::from_secs(20), 0.3)]).unwrap();
        // 0.2 per 10 s leaves 0.7 → 35 s, plus margin.
        assert!(eta >= Duration::from_secs(35) && eta <= Duration::from_secs(38), "{eta:?}");
    }

    #[test]
    fn estimator_needs_rising_progress() {
        assert_eq!(estimate_remaining(&[]), None);
        assert_eq!(estimate_remaining(&[(Duration::from_secs(1), 0.2)]), None);
        assert_eq!(estimate_remaining(&[(Duration::from_secs(1), 0.2), (Duration::from_secs(2), 0.2)]), None);
    }

    #[test]
    fn without_progress_the_policy_backs_off_to_its_cap() {
        let p = PollPolicy::default().jitter(0.0);
        let delays: Vec<_> = (0..8).map(|n| p.next_delay(&state(n, &[]))).collect();
        assert_eq!(delays[0], Duration::from_secs(1));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(5));
    }

    #[test]
    fn the_floor_holds_even_when_the_finish_is_imminent() {
        let p = PollPolicy::default();
        let d = p.next_delay(&state(5, &[(0, 0.1), (10, 0.999)]));
        assert!(d >= Duration::from_secs(1), "{d:?}");
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p =
            PollPolicy::default().backoff(Duration::from_secs(2), 1.0, Duration::from_secs(2)).floor(Duration::ZERO);
        for _ in 0..200 {
            let d = p.next_delay(&state(3, &[]));
            assert!(d >= Duration::from_millis(1800) && d <= Duration::from_millis(2200), "{d:?}");
        }
    }
}
