//! What a client learns from the tasks it saw finish: when each started running and when it
//! finished, counted from the start of waiting, per kind of task (model and duration). The poll
//! schedule of later tasks starts from it ([`Expected`], used by `src/poll.rs`).

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Mutex,
};

use serde::{Deserialize, Serialize};

/// How many finished tasks are remembered per kind: enough for quantiles, few enough to follow
/// a service whose speed changes.
const KEEP: usize = 32;
/// How many kinds are remembered; past that, the kind seen least recently is forgotten.
const MAX_KINDS: usize = 64;
/// Tasks of a kind needed before its own figures are used (else every kind's together).
const ENOUGH: usize = 3;

/// Timings learned from finished tasks, per kind of task. Serialisable, so that a program can
/// keep it across runs (the CLI does, in the user's cache folder).
///
/// A [`Client`](crate::Client) keeps one, shared by its clones, and learns from every task it
/// waits on to success; [`Client::learned`](crate::Client::learned) exports it and
/// [`ClientBuilder::learned`](crate::ClientBuilder::learned) imports it.
///
/// ```
/// use cometapi_runway::Learned;
/// let mut learned = Learned::default();
/// for (started, finished) in [(8.0, 95.0), (6.0, 80.0), (9.0, 101.0)] {
///     learned.record(Some("gen4_turbo/5"), Some(started), finished);
/// }
/// let json = serde_json::to_string(&learned).unwrap();
/// let back: Learned = serde_json::from_str(&json).unwrap();
/// let expected = back.expected(Some("gen4_turbo/5")).unwrap();
/// assert_eq!(expected.start, 8.0);
/// assert_eq!(expected.running, 87.0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Learned {
    /// Per kind, as [`Learned::kind`] names it.
    kinds: BTreeMap<String, Samples>,
    /// Every task, whatever its kind: for a task whose kind is not known (waited on by id).
    all: Samples,
    /// Tasks recorded so far: each kind notes when it was last seen, to forget the stalest.
    count: u64,
}

/// The newest finished tasks of one kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Samples {
    /// Seconds from the start of waiting until the task was running, where it was seen running.
    started: VecDeque<f64>,
    /// Seconds from the start of waiting until the task finished.
    finished: VecDeque<f64>,
    /// Seconds it ran (finished − started), where both are known.
    running: VecDeque<f64>,
    /// [`Learned::count`] when a task of this kind was last recorded.
    seen: u64,
}

/// What a task of some kind is expected to do, from the tasks of that kind seen before.
/// Seconds since waiting began.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Expected {
    /// When such a task typically starts running (median).
    pub start: f64,
    /// By when most have started (80th percentile).
    pub start_late: f64,
    /// How long such a task typically runs (median).
    pub running: f64,
    /// When the first tenth have finished.
    pub finish_early: f64,
    /// When half have finished.
    pub finish: f64,
}

impl Learned {
    /// The kind of a task, as learned: its model and video duration (`"gen4_turbo/10"`).
    ///
    /// ```
    /// assert_eq!(cometapi_runway::Learned::kind("gen4_turbo", Some(10)), "gen4_turbo/10");
    /// ```
    pub fn kind(model: &str, duration: Option<u32>) -> String {
        match duration {
            Some(d) => format!("{model}/{d}"),
            None => model.to_string(),
        }
    }

    /// Remembers a task that finished: when it was first seen running (if it was) and when it
    /// finished, in seconds since waiting began. Nonsense times (negative, NaN, started after
    /// finished) are ignored.
    pub fn record(&mut self, kind: Option<&str>, started: Option<f64>, finished: f64) {
        if !(finished.is_finite() && finished >= 0.0) {
            return;
        }
        let started = started.filter(|s| s.is_finite() && (0.0..=finished).contains(s));
        self.count += 1;
        self.all.push(started, finished);
        let Some(kind) = kind else { return };
        let samples = self.kinds.entry(kind.to_string()).or_default();
        samples.push(started, finished);
        samples.seen = self.count;
        if self.kinds.len() > MAX_KINDS {
            let stalest = self.kinds.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| k.clone());
            self.kinds.remove(&stalest.expect("more than MAX_KINDS kinds"));
        }
    }

    /// What a task of this kind is expected to do: from its kind's tasks once there are a few,
    /// else from every task; `None` until a few tasks have finished.
    pub fn expected(&self, kind: Option<&str>) -> Option<Expected> {
        let own = kind.and_then(|k| self.kinds.get(k)).filter(|s| s.enough());
        own.or(Some(&self.all).filter(|s| s.enough())).and_then(Samples::expected)
    }

    /// How many finished tasks are remembered (of every kind together).
    pub fn tasks(&self) -> usize {
        self.all.finished.len()
    }
}

/// How far into the typical run the first poll of a learned kind comes (after most such tasks
/// have started): far enough that its one report reads the pace over a good stretch, so that
/// the second poll can land close to the finish (a tenth before `BENCHMARKS.md`'s sequence run:
/// the report then said little, and cost an approach poll later).
const FIRST_POLL_RUN: f64 = 0.3;

impl Expected {
    /// When to poll a task of this kind first, in seconds since waiting began: once most such
    /// tasks have started and run a while, so that it reports their pace, but before the first
    /// tenth of them finish.
    pub(crate) fn first_poll(&self) -> f64 {
        (self.start_late + FIRST_POLL_RUN * self.running).min(self.finish_early - 1.0)
    }
}

impl Samples {
    fn push(&mut self, started: Option<f64>, finished: f64) {
        keep(&mut self.finished, finished);
        if let Some(s) = started {
            keep(&mut self.started, s);
            keep(&mut self.running, finished - s);
        }
    }

    fn enough(&self) -> bool {
        self.started.len() >= ENOUGH && self.finished.len() >= ENOUGH
    }

    fn expected(&self) -> Option<Expected> {
        let q = |v: &VecDeque<f64>, at: f64| quantile(v, at);
        Some(Expected {
            start: q(&self.started, 0.5)?,
            start_late: q(&self.started, 0.8)?,
            running: q(&self.running, 0.5)?,
            finish_early: q(&self.finished, 0.1)?,
            finish: q(&self.finished, 0.5)?,
        })
    }
}

fn keep(v: &mut VecDeque<f64>, x: f64) {
    if v.len() == KEEP {
        v.pop_front();
    }
    v.push_back(x);
}

/// The `at` quantile (0..=1) by linear interpolation; `None` if empty or not all finite (a file
/// edited by hand).
fn quantile(v: &VecDeque<f64>, at: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = v.iter().copied().filter(|x| x.is_finite() && *x >= 0.0).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let i = at * (sorted.len() - 1) as f64;
    let (lo, hi) = (i.floor() as usize, i.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo as f64))
}

/// A client's learning, shared by its clones: what it learned, and the kind of each task it
/// created that has not been waited on to the end yet.
#[derive(Debug, Default)]
pub(crate) struct Learning {
    learned: Mutex<Learned>,
    kinds: Mutex<HashMap<String, String>>,
}

/// Tasks created and not yet waited on whose kind is remembered; past that, a task's kind is
/// not noted (waiting on it uses every kind's figures).
const MAX_PENDING_KINDS: usize = 100_000;

impl Learning {
    pub(crate) fn new(learned: Learned) -> Self {
        Learning { learned: Mutex::new(learned), kinds: Mutex::default() }
    }

    pub(crate) fn learned(&self) -> Learned {
        lock(&self.learned).clone()
    }

    /// Notes the kind of a task just created, for when it is waited on.
    pub(crate) fn created(&self, id: &str, kind: String) {
        let mut kinds = lock(&self.kinds);
        if kinds.len() < MAX_PENDING_KINDS {
            kinds.insert(id.to_string(), kind);
        }
    }

    pub(crate) fn expected(&self, id: &str) -> Option<Expected> {
        let kind = lock(&self.kinds).get(id).cloned();
        lock(&self.learned).expected(kind.as_deref())
    }

    /// The wait on `id` ended; if the task succeeded, learns its times.
    pub(crate) fn ended(&self, id: &str, times: Option<(Option<f64>, f64)>) {
        let kind = lock(&self.kinds).remove(id);
        if let Some((started, finished)) = times {
            lock(&self.learned).record(kind.as_deref(), started, finished);
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data (samples)
/// is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(kind: Option<&str>, runs: &[(Option<f64>, f64)]) -> Learned {
        let mut l = Learned::default();
        for &(s, f) in runs {
            l.record(kind, s, f);
        }
        l
    }

    #[test]
    fn nothing_is_expected_before_a_few_tasks_finished() {
        let l = learned(Some("gen4_turbo/5"), &[(Some(5.0), 50.0), (Some(6.0), 60.0)]);
        assert_eq!(l.expected(Some("gen4_turbo/5")), None);
        assert_eq!(Learned::default().expected(None), None);
    }

    #[test]
    fn a_kind_uses_its_own_tasks_and_an_unknown_kind_every_task() {
        let mut l = learned(Some("gen4_turbo/5"), &[(Some(4.0), 30.0), (Some(5.0), 40.0), (Some(6.0), 50.0)]);
        for f in [200.0, 210.0, 220.0] {
            l.record(Some("gen3a_turbo/10"), Some(10.0), f);
        }
        let turbo = l.expected(Some("gen4_turbo/5")).unwrap();
        assert_eq!((turbo.start, turbo.running, turbo.finish), (5.0, 35.0, 40.0));
        let any = l.expected(None).unwrap();
        assert_eq!(any.finish, (50.0 + 200.0) / 2.0, "the median of all six");
        assert_eq!(l.expected(Some("veo3/8")), Some(any), "a kind never seen falls back to every task");
        assert_eq!(l.tasks(), 6);
    }

    #[test]
    fn quantiles_interpolate_and_keep_only_the_newest() {
        let runs: Vec<_> = (0..100).map(|i| (Some(i as f64), 100.0 + i as f64)).collect();
        let e = learned(None, &runs).expected(None).unwrap();
        // The newest 32: started 68..=99.
        assert_eq!(e.start, 83.5);
        assert!((e.start_late - (68.0 + 0.8 * 31.0)).abs() < 1e-9, "{e:?}");
        assert_eq!(e.running, 100.0);
        assert!((e.finish_early - (168.0 + 3.1)).abs() < 1e-9, "{e:?}");
    }

    #[test]
    fn the_first_poll_reads_the_pace_but_comes_before_the_first_tasks_finish() {
        // Started by about 5 s, running about 100 s: the first poll 30 s into the run.
        let long = learned(None, &[(Some(4.0), 100.0), (Some(5.0), 105.0), (Some(5.0), 110.0)]).expected(None).unwrap();
        assert!((long.first_poll() - (5.0 + 0.3 * 100.0)).abs() < 1e-9, "{long:?}");
        // A fifth finished by 22 s: a poll 30 s into a typical run would see them late.
        let runs = [(Some(4.0), 20.0), (Some(5.0), 22.0), (Some(5.0), 105.0), (Some(5.0), 110.0), (Some(6.0), 115.0)];
        let mixed = learned(None, &runs).expected(None).unwrap();
        assert!((mixed.first_poll() - (mixed.finish_early - 1.0)).abs() < 1e-9, "{mixed:?}");
        assert!(mixed.first_poll() < 20.0, "{mixed:?}");
    }

    #[test]
    fn nonsense_times_are_ignored() {
        let l = learned(None, &[(Some(-1.0), 10.0), (Some(20.0), 10.0), (Some(f64::NAN), f64::INFINITY), (None, -3.0)]);
        assert_eq!(l.all.started.len(), 0);
        assert_eq!(l.all.finished, [10.0, 10.0]);
    }

    #[test]
    fn only_the_most_recently_seen_kinds_are_kept() {
        let mut l = Learned::default();
        for k in 0..MAX_KINDS + 5 {
            l.record(Some(&format!("m{k}/5")), Some(1.0), 2.0);
        }
        assert_eq!(l.kinds.len(), MAX_KINDS);
        assert!(!l.kinds.contains_key("m0/5") && l.kinds.contains_key(&format!("m{}/5", MAX_KINDS + 4)));
    }

    #[test]
    fn it_round_trips_through_json_and_reads_any_json_object() {
        let l = learned(Some("gen4_turbo/5"), &[(Some(4.0), 30.0), (None, 40.0), (Some(6.0), 50.0)]);
        let back: Learned = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back.kinds, l.kinds);
        assert_eq!(back.all, l.all);
        // Missing fields (an older or newer file) start empty instead of failing.
        let empty: Learned = serde_json::from_str(r#"{"version": 9}"#).unwrap();
        assert_eq!(empty.tasks(), 0);
    }
}
