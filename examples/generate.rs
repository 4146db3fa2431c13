//! Create a task, wait for it with progress, download the video.
//!
//! ```sh
//! cargo run --features mock --example generate -- [IMAGE_URL] [OUTPUT.mp4]
//! ```
//!
//! Without `COMETAPI_KEY` it runs against the built-in simulator (no key, no cost); with it,
//! against CometAPI — a real, paid task.

use std::{error::Error, time::Duration};

use cometapi_runway::{mock::MockServer, Client, ImageToVideo, WaitOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let image = args.next().unwrap_or_else(|| "https://example.com/cat.jpg".to_string());
    let output = args.next().unwrap_or_else(|| std::env::temp_dir().join("generate-example.mp4").display().to_string());

    // The simulator lives as long as `_simulator`: keep it until the end of main.
    let (client, _simulator) = if std::env::var_os("COMETAPI_KEY").is_some() {
        (Client::from_env()?, None)
    } else {
        let server = MockServer::builder().running_for(Duration::from_secs(3)).start().await;
        eprintln!("no COMETAPI_KEY: using the simulator at {}", server.base_url());
        // The client a real program builds, with the default poll schedule: only the base URL and
        // key point it at the simulator.
        let client = Client::builder().base_url(server.base_url()).api_key(server.api_key()).build()?;
        (client, Some(server))
    };

    let request = ImageToVideo::new(image).prompt_text("the cat yawns, then looks at the camera");
    let id = client.create(&request).await?;
    eprintln!("created task {id}");

    // Called on every change the poller sees: status and, while running, progress.
    let options = WaitOptions::default().timeout(Duration::from_secs(600)).on_update(|task| match task.progress {
        Some(p) => eprintln!("{}: {} {:>3.0}%", task.id, task.status, p * 100.0),
        None => eprintln!("{}: {}", task.id, task.status),
    });
    let task = client.wait_with(&id, &options).await?;

    // Output URLs are signed CDN links that expire in a day or two: fetch the file now.
    let bytes = client.download(&task.output[0], &output).await?;
    println!("{output} ({bytes} bytes)");
    Ok(())
}
