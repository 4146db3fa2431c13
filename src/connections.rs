//! At most as many open connections to the API as requests may be in flight.
//!
//! # Why the request limit alone does not bound connections
//!
//! The hooks let at most `max_concurrent_requests` API requests be in flight, and a request
//! keeps its slot until its answer's body has been read. But reqwest's pool (hyper-util) hands
//! a finished request's connection back a moment *after* that body was read; a request that
//! takes the freed slot in that moment finds no idle connection, and hyper-util then races a
//! new connect against the pool checkout. The checkout wins (the old connection comes back
//! within microseconds), and the new connection is still completed in the background and kept:
//! under load, the pool grows past the limit (before this module: up to 66 connections for 64
//! in the scale benchmark, 18–19 for 16 in the 1,000-wait load test).
//!
//! # How the bound is kept
//!
//! Every new connection starts with a name lookup, and the crate gives reqwest its own
//! [resolver](reqwest::ClientBuilder::dns_resolver): a lookup for an API request first takes a
//! place in [`ConnectionLimit`]:
//!
//! - below the limit, it takes a place and looks the name up;
//! - at the limit, it waits. If the pool hands the request a freed connection meanwhile,
//!   hyper-util moves the waiting connect to a background task; the lookup sees it is polled
//!   from another task than its request's, knows nobody needs it, and fails before anything is
//!   opened (hyper-util drops a failed background connect quietly). If a place frees up, the
//!   lookup goes ahead.
//!
//! A resolver, not a connector layer, because reqwest clones its connector for every request
//! and a layered connector is boxed: a layer cost about 4% of the SDK's throughput on loopback
//! (BENCHMARKS.md), the resolver nothing. The price: a connection is only known once an answer
//! has come over it. Every API answer reports its connection (hyper-util's `HttpInfo`, by local
//! address) to [`ConnectionLimit::answered`]; the first answer over a new connection turns the
//! place its lookup took into that connection's.
//!
//! A connection is counted until it is known to be closed: its last answer said
//! `Connection: close`, or no answer has come over it for longer than the pool keeps an idle
//! connection plus the longest request (then the pool has certainly closed it). A place whose
//! connection never answered is given back after the longest connect plus the longest request.
//!
//! A connection the server closed silently stays counted until its age runs out; a lookup that
//! finds the count full and is not served by the pool within [`GRACE`] therefore goes ahead
//! anyway — the count was stale — rather than leave its request waiting on a connection that is
//! gone. So the bound can only be passed by a connection that replaces one that is closed.
//!
//! Only lookups of the API's host are held back; downloads share the pool but go to another
//! host and are let through. Not bounded: a base URL whose host is an IP address (hyper-util
//! connects to it without a lookup; the service itself is always a name), requests through a
//! proxy (the lookup is the proxy's), and a `reqwest::Client` passed in by the caller.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex},
    task::Poll,
    time::{Duration, Instant},
};

use hyper_util::client::legacy::connect::HttpInfo;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Notify;

/// How long a lookup held back at the limit waits for the pool to serve its request before
/// it concludes a counted connection is gone and connects anyway. A freed connection returns
/// to the pool within microseconds; this is far beyond that and far below a TLS handshake.
pub(crate) const GRACE: Duration = Duration::from_millis(50);

/// The count of open API connections, shared by a client's resolver and its hooks.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    /// The API's host name: only its lookups are held back.
    host: String,
    limit: usize,
    /// After this long without an answer a connection is certainly closed.
    max_silence: Duration,
    /// After this long a place whose connection never answered is given back.
    max_unanswered: Duration,
    state: Mutex<State>,
    /// Signalled when a counted connection is found closed or a place is given back.
    freed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Places taken by lookups whose connection has not answered yet, by when they were taken.
    pending: VecDeque<Instant>,
    /// Open connections by local address, with when they last carried an answer.
    open: HashMap<SocketAddr, Instant>,
}

impl State {
    fn count(&self) -> usize {
        self.pending.len() + self.open.len()
    }
}

impl ConnectionLimit {
    /// A limit of `limit` connections to `host`. `max_silence` is the pool's idle timeout plus
    /// the longest request; `max_unanswered` the longest connect plus the longest request.
    pub(crate) fn new(
        host: &str,
        limit: usize,
        max_silence: Duration,
        max_unanswered: Duration,
    ) -> Arc<ConnectionLimit> {
        let host = host.to_ascii_lowercase();
        Arc::new(ConnectionLimit {
            host,
            limit,
            max_silence,
            max_unanswered,
            state: Mutex::default(),
            freed: Notify::new(),
        })
    }

    /// The resolver to give reqwest.
    pub(crate) fn resolver(self: &Arc<Self>) -> LimitResolver {
        LimitResolver(self.clone())
    }

    /// The connection an answer came over (from `response`'s extensions), and whether the
    /// answer said `Connection: close`; for [`ConnectionLimit::answered`].
    pub(crate) fn connection_of(response: &reqwest::Response) -> Option<(SocketAddr, bool)> {
        let info = response.extensions().get::<HttpInfo>()?;
        let closing = response
            .headers()
            .get(reqwest::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        Some((info.local_addr(), closing))
    }

    /// Records that an answer was read from the connection at `local`: a new connection takes
    /// the oldest pending place; one whose answer said `Connection: close` no longer counts
    /// (called once the body has been read, when hyper closes such a connection).
    pub(crate) fn answered(&self, (local, closing): (SocketAddr, bool)) {
        let mut state = self.state.lock().expect("connection count poisoned");
        let now = Instant::now();
        match state.open.get_mut(&local) {
            Some(seen) if !closing => *seen = now,
            Some(_) => {
                state.open.remove(&local);
                drop(state);
                self.freed.notify_waiters();
            }
            None => {
                state.pending.pop_front();
                if closing {
                    drop(state);
                    self.freed.notify_waiters();
                } else {
                    state.open.insert(local, now);
                }
            }
        }
    }

    /// Open connections as counted now (lookups under way included).
    #[cfg(test)]
    fn count(&self) -> usize {
        self.state.lock().expect("connection count poisoned").count()
    }

    /// Takes a place if there is one, forgetting connections known to be gone first.
    fn try_take(&self) -> bool {
        let mut state = self.state.lock().expect("connection count poisoned");
        let now = Instant::now();
        if state.count() >= self.limit {
            state.open.retain(|_, seen| now.duration_since(*seen) < self.max_silence);
            while state.pending.front().is_some_and(|taken| now.duration_since(*taken) >= self.max_unanswered) {
                state.pending.pop_front();
            }
        }
        let free = state.count() < self.limit;
        if free {
            state.pending.push_back(now);
        }
        free
    }

    /// Takes a place beyond the limit: the count is stale (see the module docs).
    fn take_anyway(&self) {
        self.state.lock().expect("connection count poisoned").pending.push_back(Instant::now());
    }

    /// Gives back a place whose lookup failed.
    fn give_back(&self) {
        self.state.lock().expect("connection count poisoned").pending.pop_back();
        self.freed.notify_waiters();
    }

    /// Waits for a place; false once the pool has served the request (the connect moved to a
    /// background task) and no connection is needed.
    async fn place(&self) -> bool {
        let requester = tokio::task::try_id();
        let deadline = tokio::time::Instant::now() + GRACE;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take() {
                return true;
            }
            tokio::select! {
                () = &mut freed => {}
                () = tokio::time::sleep_until(deadline) => {
                    tracing::debug!(limit = self.limit, "connection count full for {GRACE:?}; connecting anyway");
                    self.take_anyway();
                    return true;
                }
                () = moved_from(requester) => return false,
            }
        }
    }
}

/// Resolves once polled from another task than `requester`: hyper-util moves a connect to a
/// background task when the pool served its request first. Checked whenever the lookup is
/// polled, i.e. whenever anything it waits on wakes it, and once right after the move (a moved
/// future is polled by its new task at once). A request sent from `block_on` has no task id;
/// the background task has one, so the move is seen all the same.
fn moved_from(requester: Option<tokio::task::Id>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |_| if tokio::task::try_id() != requester { Poll::Ready(()) } else { Poll::Pending })
}

/// The resolver reqwest looks names up with: API lookups wait for a place first.
#[derive(Debug)]
pub(crate) struct LimitResolver(Arc<ConnectionLimit>);

impl Resolve for LimitResolver {
    fn resolve(&self, name: Name) -> Resolving {
        // Downloads from the output host share the pool; only the API's host is limited.
        let limit = name.as_str().eq_ignore_ascii_case(&self.0.host).then(|| self.0.clone());
        Box::pin(async move {
            if let Some(limit) = &limit {
                if !limit.place().await {
                    return Err("the pool served the request with a freed connection".into());
                }
            }
            // What reqwest's default resolver does: getaddrinfo on the blocking pool.
            match tokio::net::lookup_host((name.as_str().to_owned(), 0)).await {
                Ok(addrs) => Ok(Box::new(addrs) as Addrs),
                Err(e) => {
                    if let Some(limit) = &limit {
                        limit.give_back();
                    }
                    Err(e.into())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(100);

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[tokio::test(start_paused = true)]
    async fn places_are_counted_until_the_connection_is_known_closed() {
        let limit = ConnectionLimit::new("api", 2, LONG, LONG);
        assert!(limit.place().await && limit.place().await, "places below the limit");
        assert_eq!(limit.count(), 2);
        limit.answered((addr(1), false)); // the first answer over a new connection
        limit.give_back(); // a lookup that failed gives its place back
        assert_eq!(limit.count(), 1);
        limit.answered((addr(1), false)); // a known connection: counted once
        assert_eq!(limit.count(), 1);
        assert!(limit.place().await, "the freed place");
        limit.answered((addr(2), false));
        assert_eq!(limit.count(), 2);

        // Full: a lookup waits GRACE for the pool, then goes ahead (the count may be stale).
        let started = tokio::time::Instant::now();
        assert!(limit.place().await, "a place after the grace");
        assert_eq!(started.elapsed(), GRACE);
        assert_eq!(limit.count(), 3);

        // An answer saying `Connection: close` ends its connection's count.
        limit.answered((addr(1), true));
        assert_eq!(limit.count(), 2);
    }

    #[test]
    fn connections_silent_and_places_unanswered_past_their_bounds_are_forgotten() {
        let silent = ConnectionLimit::new("api", 1, Duration::ZERO, LONG);
        assert!(silent.try_take());
        silent.answered((addr(3), false));
        assert!(silent.try_take(), "a connection silent past max_silence no longer counts");

        let unanswered = ConnectionLimit::new("api", 1, LONG, Duration::ZERO);
        assert!(unanswered.try_take());
        assert!(unanswered.try_take(), "a place unanswered past max_unanswered is given back");

        let held = ConnectionLimit::new("api", 1, LONG, LONG);
        assert!(held.try_take());
        assert!(!held.try_take(), "within both bounds the place still counts");
    }

    #[tokio::test(start_paused = true)]
    async fn a_freed_place_wakes_a_waiting_lookup_at_once() {
        let limit = ConnectionLimit::new("api", 1, LONG, LONG);
        assert!(limit.place().await);
        let waiting = tokio::spawn({
            let limit = limit.clone();
            async move { limit.place().await }
        });
        tokio::task::yield_now().await;
        let started = tokio::time::Instant::now();
        limit.give_back();
        assert!(waiting.await.unwrap(), "the freed place");
        assert!(started.elapsed() < GRACE, "woken by the freed place, not by the grace");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_moved_to_another_task_gives_up() {
        let limit = ConnectionLimit::new("api", 1, LONG, LONG);
        assert!(limit.place().await);
        // Started in one task, then polled by another: what hyper-util does when the pool wins.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiting = limit.clone();
        tokio::spawn(async move {
            let mut place = Box::pin(async move { waiting.place().await });
            assert!(futures_util::poll!(place.as_mut()).is_pending());
            tx.send(place).ok();
        })
        .await
        .unwrap();
        let started = rx.await.unwrap();
        let before = tokio::time::Instant::now();
        assert!(!tokio::spawn(started).await.unwrap(), "a lookup nobody needs takes no place");
        assert!(before.elapsed() < GRACE, "given up at once, not after the grace");
        assert_eq!(limit.count(), 1);
    }
}
