//! Hand-written HTTP/1.1 servers on 127.0.0.1 for the faults a well-behaved server cannot
//! produce: resets mid-body, stalls, bodies cut short, endless bodies, broken framing. Also a
//! TCP proxy that counts connections. Shared by the reliability tests.
//!
//! A [`Server`] answers each route (create, poll, file) from a script: the n-th request on a
//! route gets the n-th reply, and the last reply repeats. It records every request and counts
//! the tasks it may have created (see [`Server::tasks_created`]).
#![allow(dead_code)] // each test file uses a different part

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// The path the create call posts to.
pub const CREATE_PATH: &str = "/runwayml/v1/image_to_video";
/// The prefix of the poll path.
pub const POLL_PREFIX: &str = "/runwayml/v1/tasks/";
/// How long a stalled connection is held before the server lets go (far beyond any test timeout).
const STALL: Duration = Duration::from_secs(30);
/// An endless body stops here even if the client keeps reading: every loop is bounded.
pub const ENDLESS_LIMIT: u64 = 1 << 30;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn route(&self) -> Route {
        if self.method == "POST" && self.path == CREATE_PATH {
            Route::Create
        } else if self.path.starts_with(POLL_PREFIX) {
            Route::Poll
        } else {
            Route::File
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Create,
    Poll,
    File,
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete answer with a correct `Content-Length`; the connection stays open.
    Http { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
    /// These bytes as they are, then close (a body cut short, broken framing).
    RawThenClose(Vec<u8>),
    /// These bytes, then a TCP reset (`SO_LINGER` 0).
    RawThenReset(Vec<u8>),
    /// These bytes, then nothing more, the connection held open (a stall mid-body).
    RawThenStall(Vec<u8>),
    /// Read the request and never answer, the connection held open.
    Stall,
    /// Status line and headers, then a chunked body that does not end (up to 1 GiB).
    Endless { status: u16 },
    /// Another reply, this much later.
    Late(Duration, Box<Reply>),
    /// Status line and headers (with `Content-Length`) at once, the JSON body this much later.
    SlowBody(Duration, Value),
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Http {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// An answer with this content type and body.
    pub fn body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Http { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }

    /// Adds a header to an [`Reply::Http`].
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// `{"id": id}` as the create call answers.
    pub fn created(id: &str) -> Reply {
        Reply::json(200, json!({"id": id}))
    }

    /// A plain Runway task in this status.
    pub fn task(id: &str, status: &str) -> Reply {
        Reply::json(200, json!({"id": id, "status": status, "createdAt": "2026-05-01T12:47:47.351Z"}))
    }

    /// A plain Runway task that succeeded with this output URL.
    pub fn succeeded(id: &str, output: &str) -> Reply {
        Reply::json(200, json!({"id": id, "status": "SUCCEEDED", "output": [output]}))
    }

    /// The gateway's `task_not_exist` answer.
    pub fn task_not_exist() -> Reply {
        Reply::json(400, json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}))
    }

    /// Headers announcing `announced` bytes, then `sent` bytes of them, then close.
    pub fn cut_short(announced: usize, sent: usize) -> Reply {
        let mut raw = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        raw.extend(std::iter::repeat_n(b'v', sent));
        Reply::RawThenClose(raw)
    }

    /// Headers and the first half of a JSON body, then a reset.
    pub fn reset_mid_body(body: Value) -> Reply {
        let body = body.to_string();
        let mut raw =
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len())
                .into_bytes();
        raw.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
        Reply::RawThenReset(raw)
    }

    /// This reply, `delay` later.
    pub fn late(self, delay: Duration) -> Reply {
        Reply::Late(delay, Box::new(self))
    }

    fn status(&self) -> Option<u16> {
        match self {
            Reply::Http { status, .. } | Reply::Endless { status } => Some(*status),
            Reply::Late(_, reply) => reply.status(),
            _ => None,
        }
    }
}

/// The script of a [`Server`]: replies per route, in order, the last one repeating.
#[derive(Debug, Clone)]
pub struct Routes {
    pub create: Vec<Reply>,
    pub poll: Vec<Reply>,
    pub file: Vec<Reply>,
}

impl Routes {
    /// A task `t1` that succeeds at the first poll, with its output served by this server.
    pub fn happy(base: &str) -> Routes {
        Routes {
            create: vec![Reply::created("t1")],
            poll: vec![Reply::succeeded("t1", &format!("{base}/files/t1.mp4"))],
            file: vec![Reply::body(200, "video/mp4", VIDEO.to_vec())],
        }
    }
}

/// A `tracing` writer appending to a shared buffer, for tests that read what was logged.
pub struct LogBuffer(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes served as an output video.
pub const VIDEO: &[u8] = b"\x00\x00\x00\x18ftypmp42 not really a video, but bytes all the same";

#[derive(Default)]
struct Counters {
    creates: AtomicUsize,
    polls: AtomicUsize,
    files: AtomicUsize,
    tasks_created: AtomicUsize,
    accepted: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    streamed: AtomicU64,
}

struct State {
    routes: Routes,
    counters: Counters,
    requests: Mutex<Vec<Request>>,
}

/// A scripted HTTP server on 127.0.0.1; stops when dropped.
pub struct Server {
    base: String,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Server {
    /// Starts a server on a free port; `script` gets its base URL (for output URLs).
    pub async fn start(script: impl FnOnce(&str) -> Routes) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        Server::serve(listener, script(&base)).await
    }

    /// Serves `routes` on an already bound listener.
    pub async fn serve(listener: TcpListener, routes: Routes) -> Server {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State { routes, counters: Counters::default(), requests: Mutex::default() });
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.counters.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(connection(stream, shared.clone()));
            }
        });
        Server { base, state, accept }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Create requests received.
    pub fn creates(&self) -> usize {
        self.state.counters.creates.load(Ordering::SeqCst)
    }

    /// Poll requests received.
    pub fn polls(&self) -> usize {
        self.state.counters.polls.load(Ordering::SeqCst)
    }

    /// File (download) requests received.
    pub fn files(&self) -> usize {
        self.state.counters.files.load(Ordering::SeqCst)
    }

    /// Tasks this server may have created, counted the way that is worst for the client: every
    /// create request the server read counts, except those it refused with a `4xx` (a real
    /// service refuses before creating anything). A `5xx`, a reset or a stall after reading
    /// counts as a created task whose answer was lost.
    pub fn tasks_created(&self) -> usize {
        self.state.counters.tasks_created.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.state.counters.accepted.load(Ordering::SeqCst)
    }

    /// The most requests read and not yet answered at one moment.
    pub fn max_in_flight(&self) -> usize {
        self.state.counters.max_in_flight.load(Ordering::SeqCst)
    }

    /// Body bytes written by [`Reply::Endless`] answers.
    pub fn streamed(&self) -> u64 {
        self.state.counters.streamed.load(Ordering::SeqCst)
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) {
    let mut stream = BufReader::new(stream);
    while let Some(request) = read_request(&mut stream).await {
        let route = request.route();
        let (counter, replies) = match route {
            Route::Create => (&state.counters.creates, &state.routes.create),
            Route::Poll => (&state.counters.polls, &state.routes.poll),
            Route::File => (&state.counters.files, &state.routes.file),
        };
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let reply = replies[n.min(replies.len() - 1)].clone();
        if route == Route::Create && !reply.status().is_some_and(|s| (400..500).contains(&s)) {
            state.counters.tasks_created.fetch_add(1, Ordering::SeqCst);
        }
        state.requests.lock().unwrap().push(request);
        let now = state.counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !answer(stream.get_mut(), reply, &state).await {
            return;
        }
    }
}

/// Writes one reply; true when the connection can carry another request.
async fn answer(stream: &mut TcpStream, mut reply: Reply, state: &State) -> bool {
    while let Reply::Late(delay, later) = reply {
        tokio::time::sleep(delay).await;
        reply = *later;
    }
    // Counted out before the first byte of the answer leaves: the client cannot have seen the
    // answer (and started another request in its place) while this one still counts.
    state.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
    match reply {
        Reply::Http { status, headers, body } => {
            // As a server does: an answer that says `Connection: close` is the connection's last.
            let last =
                headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
            let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n", reason(status), body.len());
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend(body);
            stream.write_all(&out).await.is_ok() && !last
        }
        Reply::RawThenClose(raw) => {
            let _ = stream.write_all(&raw).await;
            let _ = stream.shutdown().await;
            false
        }
        Reply::RawThenReset(raw) => {
            let _ = stream.write_all(&raw).await;
            let _ = stream.flush().await;
            // Give the client time to read what was sent, so the reset lands mid-body.
            tokio::time::sleep(Duration::from_millis(20)).await;
            #[allow(deprecated)] // SO_LINGER 0 is exactly the point: close with a reset
            let _ = stream.set_linger(Some(Duration::ZERO));
            false
        }
        Reply::RawThenStall(raw) => {
            let _ = stream.write_all(&raw).await;
            tokio::time::sleep(STALL).await;
            false
        }
        Reply::Stall => {
            tokio::time::sleep(STALL).await;
            false
        }
        Reply::Endless { status } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
                reason(status)
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            let data: String = "<p>error</p>".chars().cycle().take(64 << 10).collect();
            let chunk = format!("{:x}\r\n{data}\r\n", data.len());
            while state.counters.streamed.load(Ordering::SeqCst) < ENDLESS_LIMIT {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    break;
                }
                state.counters.streamed.fetch_add(64 << 10, Ordering::SeqCst);
            }
            false
        }
        Reply::SlowBody(delay, body) => {
            let body = body.to_string();
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
            if stream.write_all(head.as_bytes()).await.is_err() || stream.flush().await.is_err() {
                return false;
            }
            tokio::time::sleep(delay).await;
            stream.write_all(body.as_bytes()).await.is_ok()
        }
        Reply::Late(..) => unreachable!("unwrapped above"),
    }
}

/// Reads one request (headers and a `Content-Length` body); `None` at the end of the connection.
async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Request { method, path, headers, body })
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Whatever")
}

/// A TCP proxy in front of another server that counts the connections made through it.
pub struct CountingProxy {
    addr: String,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl CountingProxy {
    /// Forwards every connection on a free port to `upstream` (`host:port` or `http://host:port`).
    pub async fn start(upstream: &str) -> CountingProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let (a, o, m) = (accepted.clone(), open.clone(), max_open.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                let (o, upstream) = (o.clone(), upstream.clone());
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CountingProxy { addr, accepted, open, max_open, accept }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn base_url(&self) -> &str {
        &self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The most connections open at one moment.
    pub fn max_open(&self) -> usize {
        self.max_open.load(Ordering::SeqCst)
    }
}
