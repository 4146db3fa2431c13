//! What each subcommand does, through the library's public API only: one file per subcommand,
//! and here the [`Session`] they share.

use std::time::Duration;

use crate::{
    args::{Global, RequestArgs},
    exit::{Code, Failure},
    image,
    progress::Progress,
    simulator,
};
use cometapi_runway::{mock::MockServer, Client, Error, ImageToVideo, PollPolicy, WaitOptions};

mod create;
mod generate;
pub mod mock_server;
pub mod ratios;
pub mod schema;
mod status;
mod wait;

pub use wait::check_output;

/// How long `task_not_exist` is ridden out with `--mock`: the in-process simulator only knows
/// tasks created by this very process, so an unknown id is unknown for good.
const MOCK_NOT_FOUND_GRACE: Duration = Duration::from_secs(2);
/// Polls with `--mock`: often enough that the progress visibly moves.
const MOCK_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A client, and the simulator it talks to with `--mock` (kept alive as long as the client).
pub struct Session {
    client: Client,
    wait: WaitOptions,
    json: bool,
    progress: Progress,
    _simulator: Option<MockServer>,
}

impl Session {
    /// Builds the client from the global flags; starts the simulator for `--mock`.
    pub async fn connect(global: &Global) -> Result<Session, Failure> {
        let mut wait = WaitOptions::default();
        let mut builder = Client::builder().runway_version(global.runway_version.clone());
        let simulator = if global.mock {
            let server = simulator::for_cli().try_start().await.map_err(|e| {
                Failure::new(Code::Api, "io", format!("cannot start the built-in simulator on loopback: {e}"))
            })?;
            builder = builder.api_key(server.api_key()).base_url(server.base_url());
            wait = wait.poll_policy(PollPolicy::fixed(MOCK_POLL_INTERVAL)).not_found_grace(MOCK_NOT_FOUND_GRACE);
            Some(server)
        } else {
            let key = global.api_key.as_deref().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                Failure::usage(
                    "no API key: set COMETAPI_KEY (or pass --api-key), or pass --mock to try the built-in simulator",
                )
            })?;
            builder = builder.api_key(key);
            if let Some(url) = &global.base_url {
                builder = builder.base_url(url.clone());
            }
            None
        };
        if let Some(grace) = global.not_found_grace {
            wait = wait.not_found_grace(grace);
        }
        if let Some(interval) = global.poll_interval {
            wait = wait.poll_policy(PollPolicy::fixed(interval));
        }
        let client = builder.build()?;
        Ok(Session {
            client,
            wait,
            json: global.json,
            progress: Progress::new(global.quiet, global.verbose > 0),
            _simulator: simulator,
        })
    }

    /// Creates the task. The library never retries a create whose answer was lost (that could
    /// bill twice), so when the task may exist after all, say so before the user retries.
    async fn create_task(&self, request: &ImageToVideo) -> Result<String, Failure> {
        self.client.create(request).await.map_err(|e| {
            let maybe_created = match &e {
                Error::Api { status, .. } => *status >= 500,
                Error::Transport { timeout, .. } => *timeout,
                Error::Decode { .. } => true,
                _ => false,
            };
            let mut failure = Failure::from(e);
            if maybe_created {
                failure
                    .message
                    .push_str("; the task may have been created anyway: check your CometAPI dashboard before retrying");
            }
            failure
        })
    }
}

/// Reads the request flags into a request, checking every rule: nothing is sent on error.
pub fn request(args: &RequestArgs) -> Result<ImageToVideo, Failure> {
    let image = image::resolve(&args.image)?;
    let ratio = image.ratio(args.ratio)?;
    let mut request = ImageToVideo::new(image.prompt_image).model(args.model.as_str()).watermark(args.watermark);
    if let Some(ratio) = ratio {
        request = request.ratio(ratio);
    }
    if let Some(text) = &args.prompt {
        request = request.prompt_text(text.clone());
    }
    if let Some(seed) = args.seed {
        request = request.seed(seed);
    }
    if let Some(d) = args.duration {
        request = request.duration(d);
    }
    request.build()?;
    Ok(request)
}
