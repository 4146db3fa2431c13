//! A small web service that starts generations and reports their status (axum).
//!
//! ```sh
//! cargo run --features mock --example web_handler            # serves on 127.0.0.1:3000
//! curl -X POST 'localhost:3000/videos?image=https://example.com/cat.jpg'   # {"id": "..."}
//! curl localhost:3000/videos/ID                                            # {"status": ...}
//! cargo run --features mock --example web_handler -- --self-test   # one round trip, then exit
//! ```
//!
//! A handler never waits for the video: it creates the task and answers with its id at once;
//! the status route asks the service once per request (`get_task`). Without `COMETAPI_KEY` it
//! runs against the built-in simulator.

use std::{error::Error, time::Duration};

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
    Json, Router,
};
use cometapi_runway::{mock::MockServer, Client, ImageToVideo, TaskStatus};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct NewVideo {
    image: String,
    prompt: Option<String>,
}

/// `POST /videos?image=URL[&prompt=TEXT]`: creates the task, answers its id.
async fn start(State(client): State<Client>, Query(new): Query<NewVideo>) -> (StatusCode, Json<Value>) {
    let mut request = ImageToVideo::new(new.image);
    if let Some(prompt) = new.prompt {
        request = request.prompt_text(prompt);
    }
    match client.create(&request).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "id": id }))),
        Err(e) => failure(e),
    }
}

/// `GET /videos/{id}`: the task as the service sees it now.
async fn status(State(client): State<Client>, Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    match client.get_task(&id).await {
        Ok(task) => {
            let body = json!({
                "id": task.id,
                "status": task.status.to_string(),
                "progress": task.progress,
                "video": task.output.first(),
                "failure": task.failure,
            });
            (StatusCode::OK, Json(body))
        }
        // Right after creation the service may not know the task yet: say so, not "404 forever".
        Err(e) if e.is_task_not_exist() => (StatusCode::OK, Json(json!({ "id": id, "status": "SUBMITTED" }))),
        Err(e) => failure(e),
    }
}

/// Invalid input is the caller's fault (400); anything else is the upstream's (502).
fn failure(e: cometapi_runway::Error) -> (StatusCode, Json<Value>) {
    let status = match e {
        cometapi_runway::Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    (status, Json(json!({ "error": e.to_string() })))
}

fn app(client: Client) -> Router {
    Router::new().route("/videos", post(start)).route("/videos/{id}", get(status)).with_state(client)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let self_test = std::env::args().any(|a| a == "--self-test");
    let (client, _simulator) = if std::env::var_os("COMETAPI_KEY").is_some() && !self_test {
        (Client::from_env()?, None)
    } else {
        let server = MockServer::builder().running_for(Duration::from_millis(500)).start().await;
        eprintln!("using the simulator at {}", server.base_url());
        (server.client().build()?, Some(server))
    };

    let port = if self_test { 0 } else { 3000 };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    eprintln!("listening on http://{addr}");
    let server = tokio::spawn(async move { axum::serve(listener, app(client)).await });
    if !self_test {
        server.await??;
        return Ok(());
    }

    // One round trip through the handlers, as a caller would make it.
    let http = reqwest::Client::new();
    let created: Value =
        http.post(format!("http://{addr}/videos?image=https://example.com/cat.jpg")).send().await?.json().await?;
    let id = created["id"].as_str().ok_or("no id")?.to_string();
    for _ in 0..100 {
        let now: Value = http.get(format!("http://{addr}/videos/{id}")).send().await?.json().await?;
        println!("{now}");
        if now["status"] == TaskStatus::Succeeded.to_string() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the video did not arrive in 10 s".into())
}
