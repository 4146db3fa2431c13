//! The command line, as clap reads it.
//!
//! No type here derives `Debug`: the key travels in [`Global::api_key`], and nothing should
//! ever be able to print it by formatting the arguments.

use std::{path::PathBuf, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand};
use cometapi_runway::{
    mock::{Fault, Outcome, ResponseShape, Route},
    PublicFigureThreshold, Ratio, DEFAULT_RUNWAY_VERSION, SEED_MAX,
};

use crate::exit::EXIT_CODES_HELP;

/// Turn a still image into a Runway video through CometAPI.
///
/// Try it without a key, against the built-in simulator:
///
///     cometapi-runway --mock generate --image https://example.com/cat.jpg --output cat.mp4
#[derive(Parser)]
#[command(name = "cometapi-runway", version, after_help = EXIT_CODES_HELP, max_term_width = 100, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts, before or after its name.
#[derive(Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// CometAPI key (never printed, never logged)
    #[arg(long, env = "COMETAPI_KEY", hide_env_values = true, global = true, value_name = "KEY")]
    pub api_key: Option<String>,

    /// Where the API lives (default https://api.cometapi.com)
    #[arg(long, env = "COMETAPI_BASE_URL", hide_env_values = true, global = true, value_name = "URL")]
    pub base_url: Option<String>,

    /// The X-Runway-Version header sent with every request
    #[arg(long, default_value = DEFAULT_RUNWAY_VERSION, global = true, value_name = "VERSION")]
    pub runway_version: String,

    /// Run against a simulator of the service started inside this process; no key needed
    #[arg(long, global = true)]
    pub mock: bool,

    /// Print exactly one JSON object on stdout: the result, or {"error": {...}} on failure
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress or status lines on stderr (errors are still printed)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Trace requests on stderr (-v: each request, -vv: everything); the key is never shown
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// How long `task_not_exist` counts as "not visible yet" while waiting (default 30 s; 2 s with --mock)
    #[arg(long, global = true, hide = true, value_parser = parse_duration, value_name = "DURATION")]
    pub not_found_grace: Option<Duration>,

    /// Do not keep what was learned about task timings in the cache folder across runs
    #[arg(long, env = "COMETAPI_RUNWAY_NO_LEARN", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_learn: bool,

    /// Poll at this fixed interval instead of the ETA-aware schedule (for tests)
    #[arg(long, global = true, hide = true, value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Option<Duration>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create a task, wait for it with progress, and download the video
    Generate {
        #[command(flatten)]
        request: RequestArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Create a task and print its id, without waiting
    Create {
        #[command(flatten)]
        request: RequestArgs,
    },
    /// Show a task as the service sees it now (exit 4 if it failed or was cancelled)
    Status {
        /// The task id, as printed by `create`
        id: String,
    },
    /// Wait for a task created earlier (perhaps by another process) and download the video
    Wait {
        /// The task id, as printed by `create`
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Many images to many videos from a CSV or JSON-lines file: paced, resumable, never paying twice
    ///
    /// One item per line, keys named like generate's flags: image, prompt, model, ratio, duration,
    /// seed, watermark, last_frame, audio, negative_prompt, public_figure_threshold, plus an
    /// optional output file name. A journal in the output folder records every paid step: run
    /// the same command again after a crash or Ctrl-C to resume.
    #[command(verbatim_doc_comment)]
    Batch(BatchArgs),
    /// List the output ratios the API accepts
    Ratios,
    /// List the models this version knows, with the rules each one brings (others are sent as given)
    Models,
    /// Run the simulator of the service standalone until Ctrl-C, printing its base URL and key
    MockServer(MockServerArgs),
    /// Print the JSON Schema of the create request
    Schema,
}

/// What to generate: the fields of the create request.
#[derive(Args)]
pub struct RequestArgs {
    /// Source image (the first frame): an https:// URL, or a local JPEG, PNG or WebP file (sent
    /// inline as a data URI, at most 5 MB)
    #[arg(long, value_name = "URL_OR_FILE")]
    pub image: String,

    /// The image the video ends on (veo3.1, veo3.1_fast, gen3a_turbo); --image is the first frame
    #[arg(long, value_name = "URL_OR_FILE")]
    pub last_frame: Option<String>,

    /// What should move and how (at most 512 characters; required by gen4.5)
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,

    /// Model id (see `models`); a model this version does not know is sent as given
    #[arg(long, default_value = "gen3a_turbo", value_name = "MODEL")]
    pub model: String,

    /// Output ratio (see `models`), or `auto` for the model's ratio closest to a local image's shape
    #[arg(long, value_parser = parse_ratio, value_name = "W:H|auto")]
    pub ratio: Option<RatioChoice>,

    /// Video length in seconds; which lengths a model takes is in `models` (gen3a_turbo: 5 or 10)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = parse_seconds)]
    pub duration: Option<u32>,

    /// Seed for reproducible results, 0 to 999999999
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_seed)]
    pub seed: Option<u64>,

    /// Add a Runway watermark (gen3a_turbo only; not sent unless given)
    #[arg(long)]
    pub watermark: bool,

    /// How strictly to refuse recognisable public figures (Gen-4 models)
    #[arg(long, value_parser = parse_threshold, value_name = "auto|low")]
    pub public_figure_threshold: Option<PublicFigureThreshold>,

    /// Generate an audio track (Veo 3.1 models; it affects the price)
    #[arg(long, conflicts_with = "no_audio")]
    pub audio: bool,

    /// Ask for no audio track (Veo 3.1 models)
    #[arg(long)]
    pub no_audio: bool,

    /// What the video should not show (Veo 3.1 models)
    #[arg(long, value_name = "TEXT")]
    pub negative_prompt: Option<String>,

    /// Before creating the task, ask each image URL's host the way Runway will fetch it (no key
    /// sent): no redirect, a 2xx answer, a real image Content-Type, at most 16 MB
    #[arg(long)]
    pub check_image: bool,

    /// Skip the model's own rules (ratios, durations, fields) for a rule the service has relaxed;
    /// the field rules still apply
    #[arg(long)]
    pub no_model_checks: bool,

    /// Validate, then print on stdout exactly the JSON body that would be sent; nothing is sent
    #[arg(long)]
    pub dry_run: bool,
}

/// How to wait and where the video goes.
#[derive(Args)]
pub struct WaitArgs {
    /// Give up waiting after this long: seconds, or e.g. 90s, 5m (default 10 minutes)
    #[arg(long, value_parser = parse_timeout, value_name = "SECS")]
    pub timeout: Option<Duration>,

    /// Where to save the video (default: <task id>.mp4)
    #[arg(short, long, value_name = "FILE", conflicts_with = "no_download")]
    pub output: Option<PathBuf>,

    /// Do not download; print the output URL instead
    #[arg(long)]
    pub no_download: bool,

    /// Replace the output file if it exists
    #[arg(long, conflicts_with = "no_download")]
    pub force: bool,

    /// End a download that received nothing for this long (default 60 s; no overall limit)
    #[arg(long, value_parser = parse_duration, value_name = "SECS", conflicts_with = "no_download")]
    pub download_idle_timeout: Option<Duration>,
}

/// `batch`: the input, where the videos go, and how to resume.
#[derive(Args)]
pub struct BatchArgs {
    /// The items: a .csv file with a header row, or JSON lines (.jsonl, .ndjson, .json)
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,

    /// Where the videos (and, by default, the journal) go; created if missing
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,

    /// The most creates in flight at once (halved by each rate limit, regained on success)
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..), value_name = "N")]
    pub concurrency: u16,

    /// The journal to record progress in and resume from (default: DIR/batch-journal.jsonl)
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Validate every line and print the plan; send nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Create again the items whose create was sent but never answered (may pay twice)
    #[arg(long)]
    pub resubmit_uncertain: bool,

    /// Submit a failed item once more with a new seed, when a retry may help (costs a task)
    #[arg(long)]
    pub resubmit_failed: bool,

    /// Give up waiting for one task after this long: seconds, or e.g. 90s, 5m (default 10 minutes)
    #[arg(long, value_parser = parse_duration, value_name = "SECS")]
    pub timeout: Option<Duration>,

    /// End a download that received nothing for this long (default 60 s; no overall limit)
    #[arg(long, value_parser = parse_duration, value_name = "SECS")]
    pub download_idle_timeout: Option<Duration>,
}

/// How the standalone simulator behaves. Every task takes these; times count from its creation.
#[derive(Args)]
pub struct MockServerArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub port: u16,

    /// The key the simulator accepts (the global --api-key and COMETAPI_KEY are ignored here)
    #[arg(long, default_value = "mock-key", value_name = "KEY")]
    pub key: String,

    /// Poll answers' shape: Runway's plain task, CometAPI's envelope, or both in turn
    #[arg(long, value_enum, default_value = "alternating", value_name = "SHAPE")]
    pub shape: ShapeArg,

    /// A new task answers 400 task_not_exist for this long after its creation
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub invisible_for: Duration,

    /// Instead of --invisible-for: each task's first N polls answer task_not_exist, however late
    #[arg(long, value_name = "N", conflicts_with = "invisible_for")]
    pub not_found_polls: Option<u32>,

    /// How long each task stays THROTTLED before PENDING
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub throttled_for: Duration,

    /// How long each task stays PENDING
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub pending_for: Duration,

    /// How long each task stays RUNNING, progress rising as it goes
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub running_for: Duration,

    /// RUNNING answers carry no progress
    #[arg(long)]
    pub no_progress: bool,

    /// How tasks end: succeed, fail (or fail:FAILURE.CODE), cancel, or never (RUNNING forever)
    #[arg(long, default_value = "succeed", value_parser = parse_outcome, value_name = "OUTCOME")]
    pub outcome: Outcome,

    /// Inject a fault (repeatable): KIND[:ARG][*TIMES][@ROUTE] with KIND rate-limit[:RETRY_AFTER_SECS],
    /// server-error[:STATUS], garbage, html[:STATUS] or slow:DURATION; TIMES default 1; ROUTE create,
    /// poll, download, api or any (default: the fault's own). E.g. rate-limit:2*3@create, slow:1s*5@poll
    #[arg(long = "fault", value_parser = parse_fault, value_name = "SPEC")]
    pub faults: Vec<FaultArg>,

    /// Accept requests that break a known model's own rules (field rules still apply)
    #[arg(long)]
    pub no_model_checks: bool,

    /// Allow this many creates per second, in bursts of up to BURST (default: one second's worth);
    /// more answer 429 with Retry-After
    #[arg(long, value_parser = parse_create_rate, value_name = "PER_SEC[:BURST]")]
    pub create_rate: Option<(f64, u32)>,

    /// Output URLs stop working this long after the poll that gave them (403); a new poll gives
    /// fresh ones
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub output_url_ttl: Option<Duration>,
}

/// `--create-rate 5` or `--create-rate 5:20`.
fn parse_create_rate(text: &str) -> Result<(f64, u32), String> {
    let (rate, burst) = match text.split_once(':') {
        Some((rate, burst)) => (rate, Some(burst)),
        None => (text, None),
    };
    let rate: f64 = rate.trim().parse().map_err(|_| format!("{rate:?} is not a number of creates per second"))?;
    if !(rate.is_finite() && rate > 0.0) {
        return Err("the create rate must be more than 0 per second".into());
    }
    let burst = match burst {
        Some(b) => {
            b.trim().parse::<u32>().ok().filter(|b| *b > 0).ok_or_else(|| format!("burst {b:?} must be 1 or more"))?
        }
        None => (rate.ceil() as u32).max(1),
    };
    Ok((rate, burst))
}

/// `--shape`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ShapeArg {
    Plain,
    Envelope,
    Alternating,
}

impl From<ShapeArg> for ResponseShape {
    fn from(shape: ShapeArg) -> Self {
        match shape {
            ShapeArg::Plain => ResponseShape::Plain,
            ShapeArg::Envelope => ResponseShape::Envelope,
            ShapeArg::Alternating => ResponseShape::Alternating,
        }
    }
}

/// One `--fault`: the fault, and the route it is aimed at if not its default.
#[derive(Clone)]
pub struct FaultArg {
    pub fault: Fault,
    pub route: Option<Route>,
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    let (kind, arg) = match text.trim().split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (text.trim(), None),
    };
    match (kind, arg) {
        ("succeed", None) => Ok(Outcome::Succeed),
        ("cancel", None) => Ok(Outcome::Cancel),
        ("never", None) => Ok(Outcome::NeverFinish),
        ("fail", None) => Ok(Outcome::fail("INTERNAL.BAD_OUTPUT.CODE01", "The output did not pass quality checks")),
        ("fail", Some(code)) if !code.is_empty() => Ok(Outcome::fail(code, format!("The task failed ({code})"))),
        _ => Err("expected succeed, fail, fail:CODE, cancel or never".to_string()),
    }
}

fn parse_fault(text: &str) -> Result<FaultArg, String> {
    let usage = "expected KIND[:ARG][*TIMES][@ROUTE], e.g. rate-limit:2*3@create";
    let (rest, route) = match text.trim().rsplit_once('@') {
        Some((rest, route)) => {
            let route = match route {
                "create" => Route::Create,
                "poll" => Route::Poll,
                "download" => Route::Download,
                "api" => Route::Api,
                "any" => Route::Any,
                other => return Err(format!("unknown route {other:?}: expected create, poll, download, api or any")),
            };
            (rest, Some(route))
        }
        None => (text.trim(), None),
    };
    let (rest, times) = match rest.rsplit_once('*') {
        Some((rest, times)) => (rest, times.parse::<u32>().map_err(|_| format!("invalid count {times:?}: {usage}"))?),
        None => (rest, 1),
    };
    let (kind, arg) = match rest.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (rest, None),
    };
    let status = |default: u16| -> Result<u16, String> {
        match arg {
            None => Ok(default),
            Some(a) => a.parse::<u16>().ok().filter(|s| (100..=599).contains(s)).ok_or(format!("invalid status {a:?}")),
        }
    };
    let fault = match kind {
        "rate-limit" => {
            let retry_after =
                arg.map(|a| a.parse::<u64>().map_err(|_| format!("invalid Retry-After {a:?}"))).transpose()?;
            Fault::RateLimit { times, retry_after }
        }
        "server-error" => Fault::ServerError { status: status(500)?, times, on: route.unwrap_or(Route::Poll) },
        "garbage" if arg.is_none() => Fault::GarbageBody { times },
        "html" => Fault::HtmlErrorPage { status: status(502)?, times },
        "slow" => {
            let delay = parse_duration(arg.ok_or(format!("slow needs a delay, e.g. slow:2s: {usage}"))?)?;
            Fault::Slow { delay, times }
        }
        _ => return Err(format!("unknown fault {text:?}: {usage}")),
    };
    Ok(FaultArg { fault, route })
}

/// `--ratio`: a fixed ratio, or one derived from the image.
#[derive(Clone, Copy)]
pub enum RatioChoice {
    Fixed(Ratio),
    Auto,
}

fn parse_ratio(text: &str) -> Result<RatioChoice, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(RatioChoice::Auto);
    }
    Ratio::parse(text).map(RatioChoice::Fixed).map_err(|e| format!("{e}, or auto"))
}

/// `--seed`: the gateway's range, said in the error (clap alone would call `-1` an unknown flag).
fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= SEED_MAX)
        .ok_or_else(|| format!("seed must be an integer between 0 and {SEED_MAX}"))
}

/// `--duration`: whole seconds; which ones a model takes is checked with the rest of the request.
fn parse_seconds(text: &str) -> Result<u32, String> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| "duration must be a whole number of seconds, at least 1 (see `models`)".to_string())
}

fn parse_threshold(text: &str) -> Result<PublicFigureThreshold, String> {
    text.trim().to_ascii_lowercase().parse().map_err(|_| "public figure threshold must be auto or low".to_string())
}

/// `--timeout`: a duration, more than zero (a zero timeout would give up on a paid task at once).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("timeout must be more than zero (e.g. 90, 90s or 5m)".to_string()),
        d => Ok(d),
    }
}

/// Seconds (`90`, `1.5`) or a humantime duration (`90s`, `5m`, `250ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::try_from_secs_f64(secs).map_err(|e| e.to_string()),
        Ok(_) => Err("must be a non-negative number of seconds".to_string()),
        Err(_) => humantime::parse_duration(text).map_err(|e| format!("{e} (try e.g. 90, 90s or 5m)")),
    }?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_and_humantime() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn fault_specs_read_kind_argument_count_and_route() {
        let f = parse_fault("rate-limit:2*3@create").unwrap();
        assert_eq!(f.fault, Fault::RateLimit { times: 3, retry_after: Some(2) });
        assert_eq!(f.route, Some(Route::Create));
        let f = parse_fault("server-error:502@create").unwrap();
        assert_eq!(f.fault, Fault::ServerError { status: 502, times: 1, on: Route::Create });
        assert_eq!(parse_fault("garbage*2").unwrap().fault, Fault::GarbageBody { times: 2 });
        assert_eq!(parse_fault("html").unwrap().fault, Fault::HtmlErrorPage { status: 502, times: 1 });
        let f = parse_fault("slow:250ms*4@poll").unwrap();
        assert_eq!(f.fault, Fault::Slow { delay: Duration::from_millis(250), times: 4 });
        assert!(parse_fault("slow").is_err());
        assert!(parse_fault("teapot").is_err());
        assert!(parse_fault("html:999").is_err());
        assert!(parse_fault("garbage@moon").is_err());
    }

    #[test]
    fn outcomes_read_their_names() {
        assert_eq!(parse_outcome("cancel").unwrap(), Outcome::Cancel);
        assert_eq!(parse_outcome("never").unwrap(), Outcome::NeverFinish);
        assert!(
            matches!(parse_outcome("fail:SAFETY.INPUT.IMAGE").unwrap(), Outcome::Fail { code, .. } if code == "SAFETY.INPUT.IMAGE")
        );
        assert!(parse_outcome("explode").is_err());
    }

    #[test]
    fn request_flags_name_their_rule() {
        assert!(parse_seed("-1").unwrap_err().contains("between 0 and 999999999"));
        assert_eq!(parse_seed("999999999"), Ok(999_999_999));
        assert!(parse_seed("1000000000").is_err());
        assert!(parse_seconds("0").unwrap_err().contains("at least 1"));
        assert_eq!(parse_seconds("8"), Ok(8));
        assert!(parse_timeout("0").unwrap_err().contains("more than zero"));
        assert!(parse_threshold("LOW").is_ok() && parse_threshold("high").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
