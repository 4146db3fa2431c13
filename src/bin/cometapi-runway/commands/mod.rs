//! What each subcommand does, through the library's public API only: one file per subcommand,
//! and here the [`Session`] they share.

use std::time::Duration;

use crate::{
    args::{Global, RequestArgs},
    exit::{Code, Failure},
    image, learned, output,
    progress::Progress,
    simulator,
};
use cometapi_runway::{mock::MockServer, Catalogue, Client, Error, ImageToVideo, PollPolicy, WaitOptions};

pub mod batch;
mod create;
mod generate;
pub mod mock_server;
pub mod models;
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
    learned: Option<learned::Store>,
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
        let base_url = global.base_url.as_deref().unwrap_or(cometapi_runway::DEFAULT_BASE_URL);
        let learned = learned::Store::open(base_url, global.no_learn || global.mock);
        if let Some(store) = &learned {
            builder = builder.learned(store.load());
        }
        let client = builder.build()?;
        Ok(Session {
            client,
            wait,
            json: global.json,
            progress: Progress::new(global.quiet, global.verbose > 0),
            learned,
            _simulator: simulator,
        })
    }

    /// Creates the task. The library never retries a create whose answer was lost (that could
    /// bill twice), so when the task may exist after all, say so before the user retries. Ctrl-C
    /// while the create is in flight is such a case too: the request may have arrived.
    async fn create_task(&self, request: &ImageToVideo) -> Result<String, Failure> {
        let sent = tokio::select! {
            sent = self.client.create(request) => sent,
            Ok(()) = tokio::signal::ctrl_c() => {
                return Err(Failure::new(
                    Code::Interrupted,
                    "interrupted",
                    "interrupted while the create request was in flight: the task may have been created; \
                     check your CometAPI dashboard before retrying",
                ));
            }
        };
        sent.map_err(|e| {
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

/// The request the flags describe, checked against every rule by the library; nothing is sent.
pub fn request(args: &RequestArgs) -> Result<ImageToVideo, Failure> {
    let image = image::resolve("--image", &args.image)?;
    // `--ratio auto` picks among the ratios the model takes.
    let ratio = image.ratio(args.ratio, &Catalogue::builtin().ratios_for(&args.model))?;
    let mut request = ImageToVideo::new(image.prompt_image)
        .model(args.model.as_str())
        .watermark(args.watermark)
        .model_rules(!args.no_model_checks);
    if let Some(last) = &args.last_frame {
        request = request.last_frame(image::resolve("--last-frame", last)?.prompt_image);
    }
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
    if let Some(threshold) = args.public_figure_threshold {
        request = request.public_figure_threshold(threshold);
    }
    if args.audio || args.no_audio {
        request = request.audio(args.audio);
    }
    if let Some(text) = &args.negative_prompt {
        request = request.negative_prompt(text.clone());
    }
    request.build()?;
    Ok(request)
}

/// `--dry-run`: the body exactly as it would be sent, on stdout.
pub fn dry_run(request: &ImageToVideo) -> Result<(), Failure> {
    let body = request.build()?;
    let text = serde_json::to_string(&body)
        .map_err(|e| Failure::new(Code::Api, "encode", format!("cannot encode the request: {e}")))?;
    output::text(&text);
    Ok(())
}

/// `--check-image`: asks each image URL's host the way Runway will fetch it, before anything is
/// sent to the API. Inline images (local files, data URIs) have nothing to ask.
pub async fn check_images(request: &ImageToVideo, progress: &Progress) -> Result<(), Failure> {
    for (position, uri) in request.keyframes() {
        if uri.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
            continue;
        }
        let report = cometapi_runway::check_image_host(uri).await?;
        let size = report.content_length.map(|n| format!(", {n} bytes")).unwrap_or_default();
        progress.note(&format!("{position} frame: the image host answers {}{size}", report.content_type));
    }
    Ok(())
}
