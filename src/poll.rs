//! When to poll next. With progress reports: a least-squares line through the recent reports
//! predicts the finish; a poll lands just before it while the prediction is doubtful and the
//! finish far, then one just after it. Without them: a cadence shaped like render times (rare polls early, tighter
//! ones while most renders finish, relaxed ones for outliers). What the client learned from
//! earlier tasks of the kind ([`Expected`]) places the first poll where such tasks have started
//! and gives the pace from a single report. Never faster than a floor; jitter where polls of
//! many tasks could meet.
//!
//! `BENCHMARKS.md` has the measurements this design was tuned against (sets of 1,000 simulated
//! tasks and sequences of 100 in virtual time, against the official SDKs' 6 s ± 1.5 s schedule).

use std::time::Duration;

use rand::Rng;

pub use crate::learn::Expected;

/// The schedule of polls while waiting for a task.
///
/// The default:
/// - polls first after about 1 s (instant failures and tiny tasks end here) — or, once the
///   client has learned tasks of this kind ([`crate::Learned`]), when most of them have started
///   and run about 30 % of a typical run (so that one report reads the pace);
/// - `task_not_exist` means the task was only just created: it is polled again after 1 s, 2 s,
///   4 s…;
/// - once the task reports progress while running: from one report, the pace since its start
///   (bracketed by the polls around it, or learned) and a poll 95 % of the way to the earliest
///   finish it allows; from two, a line through the recent reports predicts when progress
///   reaches 1, and while the finish is doubtful by more than 3 s and more than 6 s away the
///   next poll lands just before it; then one poll 0.4 s after the predicted finish (so a finished video is
///   seen within about a second, with few polls); a task past its predicted finish is
///   re-checked at the floor, backing off;
/// - without progress, polls next at about 15 s (renders take tens of seconds), then every 7.5 s
///   tightening to 4 s by three minutes (when most renders have finished), relaxing to 10 s past
///   six minutes;
/// - however far the finish, polls at least every 2 minutes (a task may fail);
/// - never polls more often than its floor (1 s); spreads with ±10 % jitter the pauses that
///   many tasks could share (the first poll, the cadence, `task_not_exist` re-polls), and
///   places polls aimed from this task's own progress exactly: they differ from task to task
///   already, and jitter would only move them off their aim.
///
/// ```
/// use std::time::Duration;
/// use cometapi_runway::PollPolicy;
/// // Tests and local simulators want millisecond polls:
/// let fast = PollPolicy::fixed(Duration::from_millis(5));
/// // The official SDKs' schedule: 6 s ± 1.5 s, first poll after 6 s.
/// let peer = PollPolicy::fixed(Duration::from_secs(6)).jitter(0.25);
/// // Classic capped backoff when no progress is reported (the ETA still applies when it is):
/// let backoff = PollPolicy::default().backoff(Duration::from_secs(1), 1.5, Duration::from_secs(5));
/// # let _ = (fast, peer, backoff);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    first_delay: Duration,
    cadence: Cadence,
    floor: Duration,
    jitter: f64,
    eta: bool,
}

/// The pause between polls when no ETA is available.
#[derive(Debug, Clone, PartialEq)]
enum Cadence {
    /// Interval by time since waiting began: straight lines between `(elapsed s, interval s)` points.
    RenderTime(&'static [(f64, f64)]),
    /// `initial`, growing by `factor` per poll, up to `max`.
    Backoff { initial: Duration, factor: f64, max: Duration },
}

/// The default cadence without progress. Completion is unlikely in the first seconds of a
/// render and most likely between about half a minute and three minutes, so polls are rare
/// early and tighten there; a task still running after that is an outlier (queued, stuck) and
/// is polled less again.
const RENDER_TIME_CADENCE: &[(f64, f64)] = &[(1.0, 14.0), (15.0, 7.5), (180.0, 4.0), (360.0, 10.0)];

/// How many of the newest progress reports the line is fitted through: enough to average out
/// noise, few enough to follow a task whose pace changes.
const RECENT_SAMPLES: usize = 6;
/// The noise assumed in one progress report (reports come in whole percents); the fit's own
/// residuals are used when they are larger.
const PROGRESS_NOISE: f64 = 0.01;
/// With a single progress report there is no rate yet: the next report comes this much later.
const SECOND_SAMPLE: Duration = Duration::from_secs(6);
/// With one progress report and nothing learned, the start is guessed halfway between the polls
/// around it only if they are at most this far apart (seconds).
const START_BRACKET: f64 = 4.0;
/// How far towards the earliest finish one report allows the next poll goes: far, so that the
/// line through the two reports is extrapolated over a short stretch and usually needs no
/// approach poll (0.7 until `BENCHMARKS.md`'s sequence run asked for fewer polls; 0.9 while
/// the poll was jittered up to 10 % earlier).
const FIRST_PACE_REACH: f64 = 0.95;
/// A single report below this (a task only just started) says too little of its pace.
const FIRST_PACE_MIN: f64 = 0.05;
/// An ETA poll aims this far (plus one standard error of the prediction) before the predicted
/// finish, so that it usually lands just before it and the floor-spaced re-checks catch the end.
const ETA_LEAD: f64 = 0.5;
/// A poll aimed at the finish itself comes this long after it (seconds): a prediction from close
/// reports is good to a fraction of a second (0.5 until the aimed polls lost their jitter and
/// the lag, not the polls, became the sequence run's tighter target).
const FINISH_MARGIN: f64 = 0.4;
/// An approach closer than this (seconds) to the predicted finish is not worth a poll of its
/// own: the next one is aimed at the finish.
const APPROACH_MIN: f64 = 6.0;
/// A prediction this sure (one standard error, seconds) is polled at its finish at once. Whole
/// percents alone make a line through reports a minute apart uncertain by 1–3 s: an approach
/// poll to confirm them cost more polls than the lag it saved (1.0 s before `BENCHMARKS.md`'s
/// sequence run).
const FINISH_SPREAD: f64 = 3.0;
/// However far away the finish, poll at least this often: a task may still fail or be cancelled.
const ETA_MAX_PAUSE: Duration = Duration::from_secs(120);

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first_delay: Duration::from_secs(1),
            cadence: Cadence::RenderTime(RENDER_TIME_CADENCE),
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
    /// Time from the start of waiting to the latest poll.
    pub elapsed: Duration,
    /// `(elapsed, progress)` for the polls that reported progress while running, oldest first
    /// (the newest 16 are kept).
    pub progress: Vec<(Duration, f64)>,
    /// The latest poll that saw the task not yet running (`PENDING`, `THROTTLED`, not visible).
    pub not_started: Option<Duration>,
    /// Consecutive polls, up to the latest, that met `task_not_exist`.
    pub not_visible: u32,
    /// The first poll that saw the task running.
    pub running_since: Option<Duration>,
    /// What tasks of this kind did before, if the client learned it ([`crate::Learned`]).
    pub expected: Option<Expected>,
}

impl PollState {
    /// A state for a task expected to behave like earlier ones of its kind.
    pub fn expecting(expected: Option<Expected>) -> Self {
        PollState { expected, ..PollState::default() }
    }

    /// Records one poll: when it answered (time since waiting began) and the progress it
    /// reported, if the task was running and reported any. For a poll that tells nothing of
    /// the task's phase (an unknown status, a failed poll).
    pub fn record(&mut self, elapsed: Duration, progress: Option<f64>) {
        self.polls += 1;
        self.elapsed = elapsed;
        self.not_visible = 0;
        if let Some(p) = progress.filter(|p| p.is_finite()) {
            if self.progress.len() == 16 {
                self.progress.remove(0);
            }
            self.progress.push((elapsed, p));
        }
    }

    /// Records a poll that saw the task running, with its progress if it reported any.
    pub fn record_running(&mut self, elapsed: Duration, progress: Option<f64>) {
        self.record(elapsed, progress);
        self.running_since.get_or_insert(elapsed);
    }

    /// Records a poll that saw the task queued (`PENDING`, `THROTTLED`).
    pub fn record_pending(&mut self, elapsed: Duration) {
        self.record(elapsed, None);
        self.not_started = Some(elapsed);
    }

    /// Records a poll that met `task_not_exist`: the task has only just been created.
    pub fn record_not_visible(&mut self, elapsed: Duration) {
        let streak = self.not_visible;
        self.record_pending(elapsed);
        self.not_visible = streak + 1;
    }

    /// When the task most likely started running, in seconds since waiting began: where the
    /// line through its progress meets zero, within the polls that saw it start.
    pub fn started(&self) -> Option<f64> {
        let seen = self.running_since?.as_secs_f64();
        let before = self.not_started.map_or(0.0, |d| d.as_secs_f64()).min(seen);
        let fitted = fit(&self.progress).map(|(t_mean, p_mean, rate)| t_mean - p_mean / rate);
        Some(fitted.filter(|t| t.is_finite()).unwrap_or((before + seen) / 2.0).clamp(before, seen))
    }

    /// When the task most likely finished, given the poll at `seen` that saw it done: its
    /// predicted finish, within the last poll that saw it unfinished and that one.
    pub fn finished(&self, seen: Duration) -> f64 {
        let (before, seen) = (self.elapsed.as_secs_f64().min(seen.as_secs_f64()), seen.as_secs_f64());
        let predicted = estimate(&self.progress).map(|eta| eta.finish);
        predicted.unwrap_or((before + seen) / 2.0).clamp(before, seen)
    }
}

impl PollPolicy {
    /// Poll every `interval`, first after `interval`: no ETA, no jitter, no floor.
    pub fn fixed(interval: Duration) -> Self {
        PollPolicy {
            first_delay: interval,
            cadence: Cadence::Backoff { initial: interval, factor: 1.0, max: interval },
            floor: Duration::ZERO,
            jitter: 0.0,
            eta: false,
        }
    }

    /// The pause before the first poll.
    pub fn first_delay(mut self, d: Duration) -> Self {
        self.first_delay = d;
        self
    }

    /// Without progress, pause `initial` after the first poll, growing by `factor` per poll up
    /// to `max` (replaces the default render-time cadence).
    pub fn backoff(mut self, initial: Duration, factor: f64, max: Duration) -> Self {
        // `max` rules out NaN too.
        self.cadence = Cadence::Backoff { initial, factor: factor.max(1.0), max };
        self
    }

    /// Never poll more often than this (default 1 s).
    pub fn floor(mut self, d: Duration) -> Self {
        self.floor = d;
        self
    }

    /// Spread each pause by up to ± this fraction (default 0.1; clamped to 0..=0.5). Polls
    /// aimed from the task's own progress (at or towards its predicted finish) are not spread.
    pub fn jitter(mut self, fraction: f64) -> Self {
        // NaN means no jitter: `clamp` would pass it through.
        self.jitter = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 0.5) };
        self
    }

    /// Predict the finish from progress (default on).
    pub fn eta(mut self, yes: bool) -> Self {
        self.eta = yes;
        self
    }

    /// The pause before the next poll.
    pub fn next_delay(&self, state: &PollState) -> Duration {
        let expected = state.expected.filter(|_| self.eta);
        if state.polls == 0 {
            let learned = expected.map_or(Duration::ZERO, |e| secs(e.first_poll()));
            return self.spread(self.first_delay.max(learned)).max(self.floor);
        }
        let cadence = self.spread(self.cadence(state));
        if !self.eta {
            return cadence.max(self.floor);
        }
        let elapsed = state.elapsed.as_secs_f64();
        let pause = match estimate(&state.progress) {
            Some(eta) => {
                let ahead = eta.finish - elapsed;
                let approach = ahead - eta.spread - ETA_LEAD;
                let far = |aim: f64| aim >= APPROACH_MIN;
                if ahead > 0.0 && eta.spread > FINISH_SPREAD && approach >= ahead / 2.0 && far(approach) {
                    // Far yet and doubtful: land just before the finish, for a close reading.
                    secs(approach.min(ETA_MAX_PAUSE.as_secs_f64()))
                } else if ahead > 0.0 && eta.spread > ahead && far(ahead / 2.0) {
                    // A prediction too doubtful to approach: halve the distance.
                    secs((ahead / 2.0).min(ETA_MAX_PAUSE.as_secs_f64()))
                } else if ahead > 0.0 {
                    // Close or sure enough: poll once, just after the finish.
                    secs((ahead + FINISH_MARGIN).min(ETA_MAX_PAUSE.as_secs_f64()))
                } else {
                    // Overdue: re-check soon, then less eagerly the longer the prediction has
                    // been wrong (a task parked at 99 % should not be polled every second).
                    secs((-ahead / 2.0).min(cadence.as_secs_f64()))
                }
            }
            None if state.progress.len() == 1 => match first_pace(state) {
                // Most of the way to the earliest finish one report allows: far enough for a good
                // rate, not past the finish however wrong the guess of the start.
                Some(finish) => secs(((finish - elapsed) * FIRST_PACE_REACH).min(ETA_MAX_PAUSE.as_secs_f64())),
                None => self.spread(SECOND_SAMPLE),
            },
            // `task_not_exist`: the task was only just created; look again soon, then less often.
            None if state.not_visible > 0 && state.running_since.is_none() => {
                let again = self.first_delay.max(self.floor).saturating_mul(1 << state.not_visible.min(8)) / 2;
                self.spread(again).min(cadence)
            }
            // Queued: nothing is likely to happen before such tasks have started.
            None => match expected.filter(|_| state.running_since.is_none()) {
                Some(e) => cadence.max(self.spread(secs((e.first_poll() - elapsed).min(ETA_MAX_PAUSE.as_secs_f64())))),
                None => cadence,
            },
        };
        pause.max(self.floor)
    }

    fn cadence(&self, state: &PollState) -> Duration {
        match &self.cadence {
            Cadence::RenderTime(points) => secs(interpolate(points, state.elapsed.as_secs_f64())),
            Cadence::Backoff { initial, factor, max } => {
                let steps = state.polls.saturating_sub(1).min(64) as i32;
                times(*initial, factor.powi(steps)).min(*max)
            }
        }
    }

    fn spread(&self, d: Duration) -> Duration {
        if self.jitter == 0.0 {
            return d;
        }
        times(d, rand::rng().random_range(1.0 - self.jitter..=1.0 + self.jitter))
    }
}

/// `d × k`, saturating: a user's `Duration::MAX` or a factor that grows past any clock gives the
/// longest pause, never a panic (`Duration::mul_f64` panics on overflow). NaN and `k ≤ 0` give zero.
fn times(d: Duration, k: f64) -> Duration {
    secs(d.as_secs_f64() * k)
}

/// Seconds as a `Duration`, saturating at both ends (NaN is zero).
fn secs(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

/// A predicted finish, in seconds since waiting began.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Eta {
    /// When progress is predicted to reach 1.
    finish: f64,
    /// One standard error of `finish`.
    spread: f64,
}

/// Fits `progress = a + b·t` by least squares through the newest samples and solves for
/// progress 1. `None` without two distinct times or without rising progress.
fn estimate(samples: &[(Duration, f64)]) -> Option<Eta> {
    let recent = &samples[samples.len().saturating_sub(RECENT_SAMPLES)..];
    let (t_mean, p_mean, rate) = fit(recent)?;
    let n = recent.len() as f64;
    let points = || recent.iter().map(|&(t, p)| (t.as_secs_f64(), p));
    let stt: f64 = points().map(|(t, _)| (t - t_mean).powi(2)).sum();
    let finish = t_mean + (1.0 - p_mean) / rate;
    let residual = if recent.len() > 2 {
        (points().map(|(t, p)| (p - p_mean - rate * (t - t_mean)).powi(2)).sum::<f64>() / (n - 2.0)).sqrt()
    } else {
        0.0
    };
    // Standard error of the line at `finish`, turned from progress into time by the rate.
    let noise = residual.max(PROGRESS_NOISE);
    let spread = noise * (1.0 / n + (finish - t_mean).powi(2) / stt).sqrt() / rate;
    // A rise too slow to measure predicts nothing.
    (finish.is_finite() && spread.is_finite()).then_some(Eta { finish, spread })
}

/// The least-squares line through the newest samples: `(mean time, mean progress, rate)`.
/// `None` without two distinct times or without rising progress.
fn fit(samples: &[(Duration, f64)]) -> Option<(f64, f64, f64)> {
    let recent = &samples[samples.len().saturating_sub(RECENT_SAMPLES)..];
    let n = recent.len() as f64;
    if recent.len() < 2 {
        return None;
    }
    let points = || recent.iter().map(|&(t, p)| (t.as_secs_f64(), p));
    let t_mean = points().map(|(t, _)| t).sum::<f64>() / n;
    let p_mean = points().map(|(_, p)| p).sum::<f64>() / n;
    let stt: f64 = points().map(|(t, _)| (t - t_mean).powi(2)).sum();
    if stt <= 0.0 {
        return None;
    }
    let rate = points().map(|(t, p)| (t - t_mean) * (p - p_mean)).sum::<f64>() / stt;
    // Flat, falling, or rising too slowly to tell from rounding (under 1 % in three hours).
    if rate.is_nan() || rate < 1e-6 {
        return None;
    }
    Some((t_mean, p_mean, rate))
}

/// With one progress report: the finish implied by the task's start (from the polls around it,
/// or from tasks of its kind) and the progress since. `None` when the start is too uncertain.
fn first_pace(state: &PollState) -> Option<f64> {
    let &(at, progress) = state.progress.first()?;
    let at = at.as_secs_f64();
    let since = state.running_since.map_or(at, |d| d.as_secs_f64());
    let before = state.not_started.map_or(0.0, |d| d.as_secs_f64()).min(since);
    let start = match state.expected {
        // As late as tasks of the kind usually start: a later start means an earlier finish,
        // and a poll past the finish is lag.
        Some(e) => e.start_late.clamp(before, since),
        None if since - before <= START_BRACKET => (before + since) / 2.0,
        None => return None,
    };
    // The earliest finish the report allows: a whole-percent report may be a point or two low.
    let finish = start + (at - start) / (progress + 2.0 * PROGRESS_NOISE);
    (progress >= FIRST_PACE_MIN && at - start > 0.2 && finish.is_finite()).then_some(finish)
}

/// Piecewise-linear lookup, flat beyond the first and last points.
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let (first, last) = (points[0], points[points.len() - 1]);
    if x <= first.0 {
        return first.1;
    }
    points
        .windows(2)
        .find(|w| x <= w[1].0)
        .map_or(last.1, |w| w[0].1 + (w[1].1 - w[0].1) * (x - w[0].0) / (w[1].0 - w[0].0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn samples(points: &[(f64, f64)]) -> Vec<(Duration, f64)> {
        points.iter().map(|&(t, p)| (secs(t), p)).collect()
    }

    fn state(polls: u32, elapsed: f64, progress: &[(f64, f64)]) -> PollState {
        PollState { polls, elapsed: secs(elapsed), progress: samples(progress), ..PollState::default() }
    }

    #[test]
    fn estimator_projects_a_steady_rate_to_completion() {
        // 0.01 per second, 0.3 at 30 s: progress reaches 1 at 100 s.
        let eta = estimate(&samples(&[(10.0, 0.1), (20.0, 0.2), (30.0, 0.3)])).unwrap();
        assert!((eta.finish - 100.0).abs() < 1e-9, "{eta:?}");
        // Only the assumed 1 % report noise: seconds of doubt 70 s out, not tens.
        assert!(eta.spread > 1.0 && eta.spread < 10.0, "{eta:?}");
    }

    #[test]
    fn estimator_needs_two_times_and_rising_progress() {
        assert_eq!(estimate(&[]), None);
        assert_eq!(estimate(&samples(&[(1.0, 0.2)])), None);
        assert_eq!(estimate(&samples(&[(1.0, 0.2), (1.0, 0.3)])), None);
        assert_eq!(estimate(&samples(&[(1.0, 0.2), (2.0, 0.2)])), None);
        assert_eq!(estimate(&samples(&[(1.0, 0.3), (2.0, 0.2)])), None);
    }

    #[test]
    fn estimator_follows_the_recent_pace_not_the_early_one() {
        // Slow for a minute (0.2 in 60 s), then 0.05 per second.
        let mut points: Vec<(f64, f64)> = (0..=6).map(|i| (i as f64 * 10.0, i as f64 / 30.0)).collect();
        points.extend((1..=6).map(|i| (60.0 + i as f64, 0.2 + 0.05 * i as f64)));
        let eta = estimate(&samples(&points)).unwrap();
        // At 66 s progress is 0.5; at 0.05/s the rest takes 10 s.
        assert!((eta.finish - 76.0).abs() < 0.5, "{eta:?}");
    }

    #[test]
    fn noisy_reports_widen_the_spread() {
        let clean = estimate(&samples(&[(10.0, 0.1), (15.0, 0.15), (20.0, 0.2), (25.0, 0.25)])).unwrap();
        let noisy = estimate(&samples(&[(10.0, 0.1), (15.0, 0.19), (20.0, 0.16), (25.0, 0.25)])).unwrap();
        assert!(noisy.spread > 2.0 * clean.spread, "{clean:?} {noisy:?}");
        // The noisy prediction is off, but by less than the doubt it reports.
        assert!((noisy.finish - clean.finish).abs() < noisy.spread, "{clean:?} {noisy:?}");
    }

    #[test]
    fn the_poll_lands_just_before_the_predicted_finish() {
        let p = PollPolicy::default().jitter(0.0);
        // Three reports 5 s apart read the pace too roughly to go straight to a finish 40 s away.
        let progress = [(50.0, 0.5), (55.0, 0.55), (60.0, 0.6)];
        let eta = estimate(&samples(&progress)).unwrap();
        assert!(eta.spread > FINISH_SPREAD, "{eta:?}");
        let d = p.next_delay(&state(8, 60.0, &progress)).as_secs_f64();
        // Predicted finish at 100 s: 40 s ahead, minus the spread and the lead.
        assert!((d - (40.0 - eta.spread - ETA_LEAD)).abs() < 1e-6, "{d} {eta:?}");
        assert!(d > 30.0 && d < 40.0, "{d}");
    }

    #[test]
    fn whole_percent_rounding_alone_does_not_cost_an_approach_poll() {
        // Reports a minute apart, each rounded by up to half a percent: good to a couple of
        // seconds, which one poll just after the finish absorbs; a poll to confirm them would
        // be the fourth of the task.
        let p = PollPolicy::default().jitter(0.0);
        let progress = [(20.0, 0.12), (80.0, 0.79)];
        let eta = estimate(&samples(&progress)).unwrap();
        let ahead = eta.finish - 80.0;
        assert!(eta.spread > 1.0 && eta.spread <= FINISH_SPREAD && ahead > APPROACH_MIN, "{eta:?}");
        let d = p.next_delay(&state(3, 80.0, &progress)).as_secs_f64();
        assert!((d - (ahead + FINISH_MARGIN)).abs() < 1e-6, "{d} {eta:?}");
    }

    #[test]
    fn a_doubtful_prediction_close_to_its_finish_is_polled_at_the_finish_not_crept_up_on() {
        // 3 s to go, a spread of about 1.5 s: an approach would land 1 s before, then another;
        // one poll just after the predicted finish does it.
        let p = PollPolicy::default().jitter(0.0);
        let progress = [(90.0, 0.89), (93.0, 0.935), (94.0, 0.94), (97.0, 0.97)];
        let eta = estimate(&samples(&progress)).unwrap();
        let ahead = eta.finish - 97.0;
        assert!(ahead < APPROACH_MIN && eta.spread > 1.0, "{eta:?}");
        let d = p.next_delay(&state(8, 97.0, &progress)).as_secs_f64();
        assert!((d - (ahead + FINISH_MARGIN)).abs() < 1e-6, "{d} {eta:?}");
    }

    #[test]
    fn a_distant_finish_is_still_checked_every_two_minutes() {
        let p = PollPolicy::default().jitter(0.0);
        let d = p.next_delay(&state(4, 20.0, &[(10.0, 0.01), (20.0, 0.02)]));
        assert_eq!(d, ETA_MAX_PAUSE);
    }

    #[test]
    fn absurd_progress_never_breaks_the_schedule() {
        let p = PollPolicy::default().jitter(0.0);
        // A rise of 1e-300 per second: the finish is beyond any clock.
        let crawl = p.next_delay(&state(4, 20.0, &[(10.0, 0.5), (20.0, 0.5 + 1e-299)]));
        assert!(crawl >= Duration::from_secs(1) && crawl <= ETA_MAX_PAUSE, "{crawl:?}");
        // Progress past 1 from a confused server: overdue, not a panic.
        let past = p.next_delay(&state(4, 20.0, &[(10.0, 5.0), (20.0, 1e300)]));
        assert!(past >= Duration::from_secs(1) && past <= secs(14.0), "{past:?}");
    }

    proptest::proptest! {
        #[test]
        fn any_history_gives_a_pause_between_the_floor_and_two_minutes(
            mut reports in proptest::collection::vec((0.0f64..1e5, -1.0f64..2.0), 0..20),
            polls in 0u32..10_000,
            extra in 0.0f64..1e5,
        ) {
            reports.sort_by(|a, b| a.0.total_cmp(&b.0));
            let elapsed = reports.last().map_or(0.0, |r| r.0) + extra;
            let d = PollPolicy::default().next_delay(&state(polls, elapsed, &reports));
            proptest::prop_assert!(d >= secs(1.0) && d <= ETA_MAX_PAUSE, "{:?}", d);
        }
    }

    /// Tasks that started at about 8 s (most by 12 s), ran about 100 s, finished from 40 s.
    fn learned_kind() -> Expected {
        let mut l = crate::Learned::default();
        for (started, finished) in [(4.0, 40.0), (8.0, 108.0), (12.0, 112.0), (6.0, 106.0), (10.0, 130.0)] {
            l.record(Some("k"), Some(started), finished);
        }
        l.expected(Some("k")).unwrap()
    }

    #[test]
    fn task_not_exist_means_just_started_and_is_polled_again_soon() {
        // A 2.5 s task whose first poll meets task_not_exist was next polled ~14 s later.
        let p = PollPolicy::default().jitter(0.0);
        let mut s = PollState::default();
        s.record_not_visible(secs(1.0));
        assert_eq!(p.next_delay(&s), secs(1.0));
        s.record_not_visible(secs(2.0));
        assert_eq!(p.next_delay(&s), secs(2.0));
        s.record_pending(secs(4.0));
        assert_eq!(p.next_delay(&s), secs(interpolate(RENDER_TIME_CADENCE, 4.0)), "queued: the cadence again");
    }

    #[test]
    fn one_report_right_after_the_start_finds_a_short_task_at_once() {
        // Not visible at 1 s, running at 75 % at 2 s: started about 1.5 s, done about 2.2 s.
        let p = PollPolicy::default().jitter(0.0);
        let mut s = PollState::default();
        s.record_not_visible(secs(1.0));
        s.record_running(secs(2.0), Some(0.75));
        assert_eq!(s.started(), Some(1.5));
        assert_eq!(p.next_delay(&s), secs(1.0));
    }

    #[test]
    fn a_learned_kind_places_the_first_poll_where_it_has_likely_started() {
        let e = learned_kind();
        assert_eq!((e.start, e.start_late, e.running), (8.0, 10.4, 100.0));
        let p = PollPolicy::default().jitter(0.0);
        let first = p.next_delay(&PollState::expecting(Some(e))).as_secs_f64();
        // Most have started by 10.4 s; 30 % of a typical run later the report reads the pace.
        assert!((first - (10.4 + 30.0)).abs() < 1e-9, "{first}");
        // A fixed schedule keeps to itself.
        assert_eq!(PollPolicy::fixed(secs(6.0)).next_delay(&PollState::expecting(Some(e))), secs(6.0));
    }

    #[test]
    fn one_report_with_a_learned_start_aims_most_of_the_way_to_the_earliest_finish_it_allows() {
        let p = PollPolicy::default().jitter(0.0);
        let mut s = PollState::expecting(Some(learned_kind()));
        s.record_running(secs(22.0), Some(0.14));
        // Started by 10.4 s as most such tasks, and at 14 % (perhaps 16 %) after 11.6 s: done
        // at 82.9 s at the earliest; 95 % of the way there is 57.855 s on.
        let d = p.next_delay(&s).as_secs_f64();
        assert!((d - 0.95 * 60.9).abs() < 1e-6, "{d}");
        // A report of a few percent says too little: the second report comes 6 s later.
        let mut early = PollState::expecting(Some(learned_kind()));
        early.record_running(secs(22.0), Some(0.03));
        assert_eq!(p.next_delay(&early), SECOND_SAMPLE);
    }

    #[test]
    fn polls_aimed_from_the_tasks_own_progress_are_not_jittered() {
        // Each task's aim is its own already; jitter only moved the poll off it (an earlier
        // second report read a worse pace: BENCHMARKS.md's sequence run, 74 % → 86 % of runs
        // within both targets). Pauses many tasks could share are still spread.
        let (jittered, exact) = (PollPolicy::default(), PollPolicy::default().jitter(0.0));
        let mut one_report = PollState::expecting(Some(learned_kind()));
        one_report.record_running(secs(22.0), Some(0.14));
        let approach = state(8, 60.0, &[(50.0, 0.5), (55.0, 0.55), (60.0, 0.6)]);
        let halve = state(4, 20.0, &[(10.0, 0.1), (15.0, 0.17), (20.0, 0.13)]);
        let eta = estimate(&halve.progress).unwrap();
        let ahead = eta.finish - 20.0;
        assert!(
            eta.spread > ahead && ahead - eta.spread - ETA_LEAD < ahead / 2.0 && ahead / 2.0 >= APPROACH_MIN,
            "{eta:?}"
        );
        for s in [&one_report, &approach, &halve] {
            let aim = exact.next_delay(s);
            assert!((0..50).all(|_| jittered.next_delay(s) == aim), "{s:?}");
        }
        let first = PollState::default();
        let firsts: std::collections::HashSet<Duration> = (0..50).map(|_| jittered.next_delay(&first)).collect();
        assert!(firsts.len() > 1, "the first poll is spread");
    }

    #[test]
    fn queued_with_learning_waits_for_the_likely_start() {
        let p = PollPolicy::default().jitter(0.0);
        let mut s = PollState::expecting(Some(learned_kind()));
        s.record_pending(secs(5.0));
        let d = p.next_delay(&s).as_secs_f64();
        assert!((d - (40.4 - 5.0)).abs() < 1e-6, "{d}");
    }

    #[test]
    fn running_without_progress_keeps_the_cadence_whatever_was_learned() {
        // Learned finish times say little of one task that reports no progress: a poll held
        // back until the first ones finish was lag for every task that finished earlier.
        let p = PollPolicy::default().jitter(0.0);
        let mut s = PollState::expecting(Some(learned_kind()));
        s.record_running(secs(20.0), None);
        assert_eq!(p.next_delay(&s), secs(interpolate(RENDER_TIME_CADENCE, 20.0)));
    }

    #[test]
    fn start_and_finish_are_estimated_for_learning() {
        let mut s = PollState::default();
        s.record_pending(secs(5.0));
        for (t, p) in [(12.0, 0.14), (20.0, 0.3), (30.0, 0.5)] {
            s.record_running(secs(t), Some(p));
        }
        // The line through the reports meets 0 at 5 s and 1 at 55 s.
        assert!((s.started().unwrap() - 5.0).abs() < 1e-9, "{:?}", s.started());
        assert!((s.finished(secs(56.0)) - 55.0).abs() < 1e-9);
        // Never outside the polls around the event.
        assert_eq!(s.finished(secs(40.0)), 40.0);
        let mut plain = PollState::default();
        plain.record_running(secs(10.0), None);
        assert_eq!(plain.started(), Some(5.0), "halfway between the start of waiting and the poll");
        assert_eq!(plain.finished(secs(20.0)), 15.0);
    }

    #[test]
    fn a_doubling_backoff_caps_without_overflow_past_poll_66() {
        // 2^64 s does not fit in a Duration: `mul_f64` used to panic here, about 5 minutes in.
        let p = PollPolicy::default().backoff(secs(1.0), 2.0, secs(5.0));
        for polls in [65, 66, 67, 1_000, u32::MAX] {
            let d = p.next_delay(&state(polls, 300.0, &[]));
            assert!(d >= secs(4.5) && d <= secs(5.5), "poll {polls}: {d:?}");
        }
    }

    #[test]
    fn nan_jitter_means_no_jitter() {
        let p = PollPolicy::fixed(secs(2.0)).jitter(f64::NAN);
        assert_eq!(p.next_delay(&state(3, 5.0, &[])), secs(2.0));
        assert_eq!(PollPolicy::default().jitter(f64::INFINITY).jitter, 0.5);
    }

    #[test]
    fn duration_max_is_the_longest_pause_not_a_panic() {
        let p = PollPolicy::default().jitter(0.0).first_delay(Duration::MAX).backoff(Duration::MAX, 3.0, Duration::MAX);
        assert_eq!(p.next_delay(&PollState::default()), Duration::MAX);
        assert_eq!(p.next_delay(&state(3, 5.0, &[])), Duration::MAX);
    }

    fn any_duration() -> impl proptest::strategy::Strategy<Value = Duration> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..100_000_000_000).prop_map(Duration::from_nanos),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_setting_and_any_history_give_a_pause_not_a_panic(
            first in any_duration(),
            initial in any_duration(),
            max in any_duration(),
            floor in any_duration(),
            factor in proptest::num::f64::ANY,
            jitter in proptest::num::f64::ANY,
            eta in proptest::bool::ANY,
            polls in proptest::num::u32::ANY,
            elapsed in any_duration(),
            reports in proptest::collection::vec((any_duration(), proptest::num::f64::ANY), 0..8),
        ) {
            let p = PollPolicy::default().first_delay(first).backoff(initial, factor, max).floor(floor).jitter(jitter).eta(eta);
            let mut s = PollState::default();
            for (t, progress) in reports {
                s.record(t, Some(progress));
            }
            s.polls = polls;
            s.elapsed = elapsed;
            let d = p.next_delay(&s);
            proptest::prop_assert!(d >= floor.min(first), "{:?}", d);
        }
    }

    #[test]
    fn near_the_finish_it_polls_once_just_after_it() {
        let p = PollPolicy::default();
        let d = p.next_delay(&state(9, 99.0, &[(80.0, 0.8), (90.0, 0.9), (99.0, 0.99)]));
        // Predicted at 100 s: one poll 0.3 s after, never earlier than the floor.
        assert_eq!(d, secs(1.0 + FINISH_MARGIN));
    }

    #[test]
    fn overdue_rechecks_back_off_to_the_cadence() {
        let p = PollPolicy::default().jitter(0.0);
        let progress = [(80.0, 0.8), (90.0, 0.9)]; // predicted finish at 100 s
        let at = |elapsed: f64| p.next_delay(&state(9, elapsed, &progress));
        assert_eq!(at(101.0), Duration::from_secs(1));
        assert_eq!(at(106.0), secs(3.0));
        assert_eq!(at(200.0), secs(interpolate(RENDER_TIME_CADENCE, 200.0)));
    }

    #[test]
    fn one_report_waits_for_a_second_before_predicting() {
        let p = PollPolicy::default().jitter(0.0);
        assert_eq!(p.next_delay(&state(2, 15.0, &[(15.0, 0.05)])), SECOND_SAMPLE);
    }

    #[test]
    fn without_progress_the_cadence_follows_render_times() {
        let p = PollPolicy::default().jitter(0.0);
        let at = |polls: u32, elapsed: f64| p.next_delay(&state(polls, elapsed, &[])).as_secs_f64();
        assert_eq!(p.next_delay(&PollState::default()), Duration::from_secs(1));
        assert_eq!(at(1, 1.0), 14.0, "the second poll comes at about 15 s");
        assert_eq!(at(2, 15.0), 7.5);
        assert!(at(10, 60.0) < 7.5 && at(10, 60.0) > at(20, 120.0), "tightening while renders finish");
        assert_eq!(at(30, 180.0), 4.0);
        assert_eq!(at(60, 400.0), 10.0, "relaxed for outliers");
    }

    #[test]
    fn backoff_replaces_the_cadence_and_caps() {
        let p = PollPolicy::default().jitter(0.0).backoff(secs(1.0), 2.0, secs(5.0));
        let delays: Vec<_> = (1..6).map(|n| p.next_delay(&state(n, 0.0, &[]))).collect();
        assert_eq!(delays, [secs(1.0), secs(2.0), secs(4.0), secs(5.0), secs(5.0)]);
    }

    #[test]
    fn the_floor_holds_everywhere() {
        let p = PollPolicy::default().backoff(secs(0.1), 1.0, secs(0.1));
        assert_eq!(p.clone().first_delay(Duration::ZERO).next_delay(&PollState::default()), secs(1.0));
        assert_eq!(p.next_delay(&state(3, 5.0, &[])), secs(1.0));
        assert_eq!(p.next_delay(&state(9, 99.5, &[(80.0, 0.8), (90.0, 0.9), (99.0, 0.999)])), secs(1.0));
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_eta_polls_only_move_earlier() {
        let p = PollPolicy::default().backoff(secs(2.0), 1.0, secs(2.0)).floor(Duration::ZERO);
        let eta_state = state(8, 60.0, &[(10.0, 0.1), (20.0, 0.2), (30.0, 0.3), (40.0, 0.4), (50.0, 0.5), (60.0, 0.6)]);
        let aimed = p.clone().jitter(0.0).next_delay(&eta_state);
        let (mut low, mut high) = (false, false);
        for _ in 0..200 {
            let d = p.next_delay(&state(3, 5.0, &[]));
            assert!(d >= secs(1.8) && d <= secs(2.2), "{d:?}");
            low |= d < secs(1.95);
            high |= d > secs(2.05);
            let e = p.next_delay(&eta_state);
            assert!(e <= aimed && e >= aimed.mul_f64(0.9), "{e:?} vs {aimed:?}");
        }
        assert!(low && high, "jitter spreads both ways");
    }

    #[test]
    fn fixed_polls_at_its_interval_from_the_first_delay() {
        let p = PollPolicy::fixed(secs(5.0)).first_delay(secs(2.0));
        assert_eq!(p.next_delay(&PollState::default()), secs(2.0));
        assert_eq!(p.next_delay(&state(1, 2.0, &[])), secs(5.0));
        assert_eq!(p.next_delay(&state(7, 40.0, &[(30.0, 0.5), (35.0, 0.9)])), secs(5.0), "no ETA");
        assert_eq!(
            PollPolicy::fixed(Duration::from_millis(5)).next_delay(&state(3, 0.1, &[])),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn state_keeps_the_newest_sixteen_reports() {
        let mut s = PollState::default();
        for i in 0..20 {
            s.record(secs(i as f64), Some(i as f64 / 100.0));
        }
        s.record(secs(20.0), None);
        s.record(secs(21.0), Some(f64::NAN));
        assert_eq!((s.polls, s.elapsed), (22, secs(21.0)));
        assert_eq!(s.progress.len(), 16);
        assert_eq!(s.progress[0], (secs(4.0), 0.04));
        assert_eq!(s.progress[15], (secs(19.0), 0.19));
    }
}
