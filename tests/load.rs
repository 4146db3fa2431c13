//! Cancellation and load: a dropped wait sends nothing more, and one client carries a thousand
//! concurrent waits to the right results over a bounded number of connections: on HTTP/1.1 the
//! request limit plus a tenth of it idle, on HTTP/2 one.

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
        .base_url(proxy.base_url())
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
    // In-flight requests never exceed LIMIT (see the next test); connections in use neither, and
    // the pool keeps at most LIMIT idle besides (spares opened while a freed connection was on
    // its way back to the pool), whatever the number of waits.
    assert!(proxy.max_open() <= bound(LIMIT), "{} connections open at once", proxy.max_open());
    let requests = server.requests().len();
    eprintln!(
        "{WAITS} waits: {requests} requests in {took:?} over {} connections (at most {} open at once)",
        proxy.connections(),
        proxy.max_open()
    );
}

/// The most HTTP/1.1 connections a client limited to `limit` requests can keep open, by
/// reqwest's documented pool settings: one per request in flight, and `limit` idle. (Under
/// load it stays near `limit`: BENCHMARKS.md, "Connections".)
fn bound(limit: usize) -> usize {
    2 * limit
}

/// `calls` concurrent polls of task `t1` at `base` on one client limited to `limit` requests in
/// flight.
async fn concurrent_polls(base: &str, limit: usize, calls: usize) -> Vec<Result<Task, Error>> {
    let client = Client::builder().api_key("sk-load").base_url(base).max_concurrent_requests(limit).build().unwrap();
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
    let proxy = CountingProxy::start(server.base_url()).await;
    let results = concurrent_polls(proxy.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.progress == Some(0.5))));
    // Without the slot held across the body it was one per call.
    assert!(proxy.max_open() <= bound(LIMIT), "{} connections open at once for {CALLS} calls", proxy.max_open());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stay_near_the_client_limit() {
    // Fast answers and many more calls than slots: every answer frees a slot a moment before its
    // connection is back in the pool, the moment a new connect would race the pool.
    const CALLS: usize = 3000;
    const LIMIT: usize = 4;
    let server = Server::start(|base| Routes { poll: vec![Reply::task("t1", "RUNNING")], ..Routes::happy(base) }).await;
    let proxy = CountingProxy::start(server.base_url()).await;
    let results = concurrent_polls(proxy.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.status == TaskStatus::Running)));
    assert_eq!(server.polls(), CALLS);
    // Reached (so the limit is what bounded it) and never passed by more than the idle spares.
    eprintln!("{CALLS} polls through {LIMIT} slots: at most {} connections open at once", proxy.max_open());
    assert!(proxy.max_open() >= LIMIT && proxy.max_open() <= bound(LIMIT), "{} open at once", proxy.max_open());
}

#[tokio::test]
async fn a_connection_the_server_closes_is_replaced() {
    // Every answer says `Connection: close` and the server then closes: each call needs a new
    // connection, and the limit still holds.
    const CALLS: usize = 40;
    const LIMIT: usize = 2;
    let server = Server::start(|base| Routes {
        poll: vec![Reply::task("t1", "RUNNING").with_header("Connection", "close")],
        ..Routes::happy(base)
    })
    .await;
    let results = concurrent_polls(server.base_url(), LIMIT, CALLS).await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.status == TaskStatus::Running)));
    assert_eq!(server.connections(), CALLS, "one connection per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_every_request_shares_one_connection() {
    // The service speaks HTTP/2 over TLS (ALPN); on loopback the simulator speaks it in clear
    // text (h2c) to a client that knows it will.
    const CALLS: usize = 1000;
    const LIMIT: usize = 64;
    let server = MockServer::builder().not_found_polls(0).start().await;
    let proxy = CountingProxy::start(server.base_url()).await;
    let http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let client =
        server.client().base_url(proxy.base_url()).http_client(http).max_concurrent_requests(LIMIT).build().unwrap();
    let id = client.create(&request(0)).await.unwrap();

    let results = join_all((0..CALLS).map(|_| {
        let (client, id) = (client.clone(), id.clone());
        async move { client.get_task(&id).await }
    }))
    .await;

    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|t| t.id == id)));
    assert_eq!(server.requests_on(Route::Poll).len(), CALLS);
    assert_eq!(proxy.connections(), 1, "one connection for the create and {CALLS} polls");
}
