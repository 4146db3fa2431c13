//! Cancellation and load: a dropped wait sends nothing more, and one client carries a thousand
//! concurrent waits to the right results over a bounded number of connections.

mod support;

use std::{collections::HashSet, pin::pin, time::Duration};

use cometapi_runway::{
    mock::{MockServer, Outcome, Route},
    Client, Error, ImageToVideo, PollPolicy, Task, TaskStatus,
};
use futures_util::{future::join_all, StreamExt};
use serde_json::json;
use support::{CountingProxy, Reply, Routes, Server};

const POLL: Duration = Duration::from_millis(10);

fn request(n: usize) -> ImageToVideo {
    ImageToVideo::new(format!("https://example.com/cat-{n}.jpg")).prompt_text("the cat yawns")
}

/// Polls received so far, once the requests already on the wire have landed.
async fn settled_polls(server: &MockServer) -> usize {
    tokio::time::sleep(POLL * 3).await;
    server.requests_on(Route::Poll).len()
}

#[tokio::test]
async fn dropping_a_wait_stops_all_requests_for_it() {
    let server = MockServer::builder().outcome(Outcome::NeverFinish).start().await;
    let client = server.client().build().unwrap();
    let id = client.create(&request(0)).await.unwrap();

    let waited = tokio::time::timeout(POLL * 10, client.wait(&id)).await;
    assert!(waited.is_err(), "the task never finishes: the wait was still going when dropped");
    let after_drop = settled_polls(&server).await;
    assert!(after_drop >= 3, "it was polling before the drop: {after_drop}");

    tokio::time::sleep(POLL * 10).await;
    assert_eq!(server.requests_on(Route::Poll).len(), after_drop, "no poll after the drop");
    assert_eq!(server.tasks_created(), 1);
}

#[tokio::test]
async fn dropping_an_update_stream_stops_all_requests_for_it() {
    let server = MockServer::builder().outcome(Outcome::NeverFinish).not_found_polls(0).start().await;
    let client = server.client().build().unwrap();
    let id = client.create(&request(0)).await.unwrap();

    {
        let mut updates = pin!(client.updates(&id, MockServer::wait_options()));
        for _ in 0..3 {
            let task = updates.next().await.unwrap().unwrap();
            assert!(!task.is_terminal());
        }
    } // dropped here, mid-wait
    let after_drop = settled_polls(&server).await;
    assert!(after_drop >= 3, "{after_drop}");

    tokio::time::sleep(POLL * 10).await;
    assert_eq!(server.requests_on(Route::Poll).len(), after_drop, "no poll after the drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_waits_on_one_client_finish_over_bounded_connections() {
    const WAITS: usize = 1000;
    const LIMIT: usize = 16;
    let server = MockServer::builder()
        .not_found_polls(1)
        .pending_for(Duration::from_millis(20))
        .running_for(Duration::from_millis(100))
        .start()
        .await;
    let proxy = CountingProxy::start(server.base_url()).await;
    let client = server
        .client()
        .base_url(by_name(proxy.base_url()))
        .max_concurrent_requests(LIMIT)
        .wait_options(
            MockServer::wait_options()
                .poll_policy(PollPolicy::fixed(Duration::from_millis(50)))
                .timeout(Duration::from_secs(60)),
        )
        .build()
        .unwrap();

    let started = std::time::Instant::now();
    let results = join_all((0..WAITS).map(|n| {
        let client = client.clone();
        async move { client.generate(&request(n)).await }
    }))
    .await;
    let took = started.elapsed();

    let mut ids = HashSet::new();
    for result in results {
        let task = result.unwrap();
        assert_eq!(task.status, TaskStatus::Succeeded);
        assert_eq!(task.output, [server.output_url(&task.id)], "each wait got its own task");
        assert!(ids.insert(task.id), "no two waits got the same task");
    }
    assert_eq!(server.tasks_created(), WAITS, "one task per call, none twice");
    // In-flight requests never exceed LIMIT (see the next test), and neither do connections,
    // whatever the number of waits: the pool reuses them, and a connect started while a freed
    // connection is on its way back to the pool gives up (src/connections.rs).
    assert!(proxy.max_open() <= LIMIT, "{} connections open at once", proxy.max_open());
    assert!(proxy.connections() <= LIMIT, "{} connections opened in all", proxy.connections());
    let requests = server.requests().len();
    eprintln!(
        "{WAITS} waits: {requests} requests in {took:?} over {} connections (at most {} open at once)",
        proxy.connections(),
        proxy.max_open()
    );
}

/// `base` with its host as a name: the connection limit holds for names, and the service is
/// always one; to an IP address hyper-util connects without the lookup the limit rides on.
fn by_name(base: &str) -> String {
    base.replace("127.0.0.1", "localhost")
}

/// `calls` concurrent polls of task `t1` at `base` on one client limited to `limit` requests in
/// flight.
async fn concurrent_polls(base: &str, limit: usize, calls: usize) -> Vec<Result<Task, Error>> {
    let client =
        Client::builder().api_key("sk-load").base_url(by_name(base)).max_concurrent_requests(limit).build().unwrap();
    join_all((0..calls).map(|_| {
        let client = client.clone();
        async move { client.get_task("t1").await }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_never_exceed_the_client_limit() {
    const CALLS: usize = 200;
    const LIMIT: usize = 8;
    let server = Server::start(|base| Routes {
        poll: vec![Reply::task("t1", "RUNNING").late(Duration::from_millis(20))],
        ..Routes::happy(base)
    })
    .await;
    let results = concurrent_polls(server.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.status == TaskStatus::Running)));
    assert_eq!(server.polls(), CALLS);
    // Reached, so the limit (not the load) is what bounded it; never passed.
    assert_eq!(server.max_in_flight(), LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_keeps_its_request_slot_until_it_is_read() {
    // The headers arrive at once and the body 100 ms later: a request still reading its body
    // holds its slot, so 50 concurrent polls never need more than about LIMIT connections.
    const CALLS: usize = 50;
    const LIMIT: usize = 4;
    let body = json!({"id": "t1", "status": "RUNNING", "progress": 0.5});
    let server = Server::start(|base| Routes {
        poll: vec![Reply::SlowBody(Duration::from_millis(100), body)],
        ..Routes::happy(base)
    })
    .await;
    let results = concurrent_polls(server.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.progress == Some(0.5))));
    // Without the slot held across the body it was one per call.
    assert!(server.connections() <= LIMIT, "{} connections for {CALLS} calls", server.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_never_exceed_the_client_limit() {
    // Fast answers and many more calls than slots: every answer frees a slot a moment before its
    // connection is back in the pool, the moment a new connect would race the pool.
    const CALLS: usize = 3000;
    const LIMIT: usize = 4;
    let server = Server::start(|base| Routes { poll: vec![Reply::task("t1", "RUNNING")], ..Routes::happy(base) }).await;
    let results = concurrent_polls(server.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.status == TaskStatus::Running)));
    assert_eq!(server.polls(), CALLS);
    // Reached (so the limit is what bounded it) and never passed, over the whole run.
    assert_eq!(server.connections(), LIMIT, "connections accepted for {CALLS} calls");
}

/// What the crate logs at DEBUG on this thread while the guard lives.
struct Log {
    lines: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Log {
    fn capture() -> Log {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(move || support::LogBuffer(writer.clone()))
            .finish();
        Log { lines, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn contains(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.lines.lock().unwrap()).contains(text)
    }
}

// One thread, so the log subscriber (thread-local) sees every task.
#[tokio::test]
async fn a_connection_the_server_closes_frees_its_place_at_once() {
    // Every answer says `Connection: close` and the server then closes: each call needs a new
    // connection, and a connection known to be closing no longer counts, so no connect waits out
    // the grace meant for connections that vanished silently (which would say so in the log).
    const CALLS: usize = 40;
    const LIMIT: usize = 2;
    let server = Server::start(|base| Routes {
        poll: vec![Reply::task("t1", "RUNNING").with_header("Connection", "close")],
        ..Routes::happy(base)
    })
    .await;
    let log = Log::capture();
    let results = concurrent_polls(server.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.status == TaskStatus::Running)));
    assert_eq!(server.connections(), CALLS, "one connection per call");
    // Not asserted: at most LIMIT open at once. A closing connection is counted out once its
    // last answer has been read, a moment before its socket is gone, so a count taken at the
    // other end may see one more for that moment.
    assert!(!log.contains("connecting anyway"), "a connect waited for a place a closed connection held");
}
