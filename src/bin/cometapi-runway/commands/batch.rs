//! `batch`: many images to many videos from a CSV or JSON-lines file, through
//! [`Client::batch`](cometapi_runway::Client::batch): every line checked before anything is
//! sent, a journal in the output folder, Ctrl-C that stops cleanly and says how to resume.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use cometapi_runway::{
    BatchItem, BatchOptions, BatchOutcome, BatchResult, Catalogue, DownloadOptions, Error, ImageToVideo, Model,
    PublicFigureThreshold, Ratio, StopReason,
};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::Session;
use crate::{
    args::{BatchArgs, Global, RatioChoice},
    batch_input::{self, Format, Item, LineError},
    batch_progress::Display,
    exit::{Code, Failure},
    image, output,
};

/// The journal's name in the output folder unless `--journal` says otherwise.
pub const DEFAULT_JOURNAL: &str = "batch-journal.jsonl";
/// A download that receives nothing for this long is given up (no overall limit).
pub const DEFAULT_DOWNLOAD_IDLE: Duration = Duration::from_secs(60);

/// One valid line, ready to send.
struct Planned {
    item: Item,
    request: ImageToVideo,
}

/// `batch`: validate everything, then run (or print the plan with `--dry-run`).
pub async fn run(global: &Global, args: &BatchArgs) -> Result<(), Failure> {
    let planned = plan(args)?;
    let journal = args.journal.clone().unwrap_or_else(|| args.out_dir.join(DEFAULT_JOURNAL));
    if args.dry_run {
        print_plan(&planned, args, &journal, global.json);
        return Ok(());
    }
    std::fs::create_dir_all(&args.out_dir).map_err(|e| {
        Failure::usage(format!("cannot create --out-dir {}: {e} (nothing was sent)", args.out_dir.display()))
    })?;
    let session = Session::connect(global).await?;
    let total = planned.len();
    let lines: Vec<usize> = planned.iter().map(|p| p.item.line).collect();
    let items: Vec<BatchItem> = planned
        .into_iter()
        .map(|p| {
            let item = match &p.item.output {
                Some(name) => BatchItem::new(p.request, args.out_dir.join(name)),
                None => BatchItem::named_by_task(p.request, &args.out_dir, format!("{:04}-", p.item.line)),
            };
            item.key(p.item.identity())
        })
        .collect();

    let display = Display::new(global, total, lines.clone());
    let mut wait = session.wait.clone();
    if let Some(timeout) = args.timeout {
        wait = wait.timeout(timeout);
    }
    let reporter = display.clone();
    let options = BatchOptions::default()
        .concurrency(usize::from(args.concurrency))
        .journal(&journal)
        .resubmit_uncertain(args.resubmit_uncertain)
        .resubmit_failed(args.resubmit_failed)
        .wait_options(wait)
        .download_options(
            DownloadOptions::default().idle_timeout(args.download_idle_timeout.unwrap_or(DEFAULT_DOWNLOAD_IDLE)),
        )
        .on_update(move |index, update| reporter.update(index, update));
    let mut batch = session.client.batch(items, options).map_err(Failure::from)?;

    let resume = resume_command(args, &journal);
    let stopper = batch.stopper();
    let run_state = batch.stopper();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let on_signal = interrupted.clone();
    let signal_display = display.clone();
    let hint = resume.clone();
    let signals = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        on_signal.store(true, std::sync::atomic::Ordering::SeqCst);
        stopper.stop();
        signal_display.note(
            "interrupted: no new tasks; waiting for creates already sent to be answered and recorded \
             (Ctrl-C again to exit at once)",
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            // The journal is whole at every moment: a create without its answer is reported as
            // uncertain by the next run.
            eprintln!("interrupted again: exiting now; tasks go on at the service; resume with: {hint}");
            std::process::exit(Code::Interrupted as i32);
        }
    });

    let mut tally = Tally::default();
    while let Some(result) = batch.next().await {
        let line = lines[result.index];
        display.finished(&result, line);
        if global.json {
            output::json_line(&result_object(&result, line));
        }
        tally.add(&result);
    }
    signals.abort();
    display.clear();

    let user_stop = interrupted.load(std::sync::atomic::Ordering::SeqCst);
    let code = if user_stop {
        Some(Code::Interrupted)
    } else if run_state.stopped_by() == Some(StopReason::Error) {
        Some(Code::Api)
    } else if tally.saved + tally.already_saved < total {
        Some(Code::TaskFailed)
    } else {
        None
    };
    let exit_code = code.map_or(0, |c| c as u8);
    if global.json {
        output::json_line(&json!({"summary": tally.object(total, &journal, exit_code)}));
    }
    if !global.quiet {
        eprintln!("{}", tally.text(total));
    }
    let Some(code) = code else { return Ok(()) };
    let message = match code {
        Code::Interrupted => format!("interrupted; tasks already created go on at the service; resume with: {resume}"),
        Code::Api => {
            format!("an API or transport error stopped the batch (see above); fix it, then resume with: {resume}")
        }
        _ => {
            let mut m =
                format!("{} of {total} items did not produce a video", total - tally.saved - tally.already_saved);
            if tally.uncertain > 0 {
                m.push_str(&format!(
                    "; {} uncertain (a create was sent but not answered: check your CometAPI dashboard, \
                     or add --resubmit-uncertain to create them again)",
                    tally.uncertain
                ));
            }
            m.push_str(&format!("; rerun to retry what can be: {resume}"));
            m
        }
    };
    Err(Failure::new(code, if code == Code::Interrupted { "interrupted" } else { "batch" }, message).quiet_on_stdout())
}

/// Reads and checks every line; exit 2 naming each broken rule if any.
fn plan(args: &BatchArgs) -> Result<Vec<Planned>, Failure> {
    let format = Format::of(&args.input).map_err(Failure::usage)?;
    let text = std::fs::read_to_string(&args.input)
        .map_err(|e| Failure::usage(format!("cannot read --input {}: {e} (nothing was sent)", args.input.display())))?;
    let (items, mut errors) = batch_input::parse(&text, format);
    let base = args.input.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut planned = Vec::new();
    let mut outputs: HashMap<String, usize> = HashMap::new();
    for item in items {
        if let Some(name) = &item.output {
            if let Some(first) = outputs.insert(name.clone(), item.line) {
                errors.push(LineError::new(item.line, "output", name, format!("is also the output of line {first}")));
            }
        }
        match request_of(&item, &base) {
            Ok(request) => planned.push(Planned { item, request }),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        return Ok(planned);
    }
    errors.sort_by_key(|e| e.line);
    for e in &errors {
        eprintln!("{}", output::clean(&format!("{}: {e}", args.input.display())));
    }
    let broken =
        if errors.len() == 1 { "1 rule is broken".to_string() } else { format!("{} rules are broken", errors.len()) };
    Err(Failure::usage(format!(
        "{broken} in {} (every line is checked before anything is sent; nothing was sent)",
        args.input.display()
    )))
}

/// One line's request, through the same checks as `generate`'s flags. Local image files are
/// read relative to the input file's folder.
fn request_of(item: &Item, base: &Path) -> Result<ImageToVideo, Vec<LineError>> {
    let line = item.line;
    let err = |field: &str, value: &str, rule: String| vec![LineError::new(line, field, value, rule)];
    let locate = |arg: &str| {
        if image::has_scheme(arg) || Path::new(arg).is_absolute() {
            arg.to_string()
        } else {
            base.join(arg).display().to_string()
        }
    };
    let image = image::resolve("image", &locate(&item.image)).map_err(|f| err("image", &item.image, f.message))?;
    let model = item.model.clone().unwrap_or_else(|| Model::default().as_str().to_string());
    // `ratio: auto` picks among the ratios the model takes.
    let candidates = Catalogue::builtin().ratios_for(&model);
    let choice = match item.ratio.as_deref() {
        None => None,
        Some(r) if r.trim().eq_ignore_ascii_case("auto") => Some(RatioChoice::Auto),
        Some(r) => Some(RatioChoice::Fixed(Ratio::parse(r).map_err(|e| err("ratio", r, rule_of(&e)))?)),
    };
    let ratio = image
        .ratio(choice, &candidates)
        .map_err(|f| err("ratio", item.ratio.as_deref().unwrap_or_default(), f.message))?;
    let mut request = ImageToVideo::new(image.prompt_image).model(model.as_str());
    if let Some(last) = &item.last_frame {
        let last = image::resolve("last_frame", &locate(last)).map_err(|f| err("last_frame", last, f.message))?;
        request = request.last_frame(last.prompt_image);
    }
    if let Some(ratio) = ratio {
        request = request.ratio(ratio);
    }
    if let Some(text) = &item.prompt {
        request = request.prompt_text(text.clone());
    }
    if let Some(seed) = item.seed {
        request = request.seed(seed);
    }
    if let Some(d) = item.duration {
        request = request.duration(d);
    }
    if let Some(w) = item.watermark {
        request = request.watermark(w);
    }
    if let Some(audio) = item.audio {
        request = request.audio(audio);
    }
    if let Some(text) = &item.negative_prompt {
        request = request.negative_prompt(text.clone());
    }
    if let Some(threshold) = &item.public_figure_threshold {
        let parsed: PublicFigureThreshold =
            threshold.parse().map_err(|_| err("public_figure_threshold", threshold, "must be auto or low".into()))?;
        request = request.public_figure_threshold(parsed);
    }
    match request.build() {
        Ok(_) => Ok(request),
        Err(Error::InvalidInput { field, value, rule, model }) => {
            let rule = match model {
                Some(model) => format!("{rule} (for {model})"),
                None => rule,
            };
            Err(err(input_key(field), value.trim_matches('"'), rule))
        }
        Err(other) => Err(err("request", "", other.to_string())),
    }
}

/// The input file's key for a request field the library names as the API does.
fn input_key(field: &str) -> &str {
    match field {
        "promptImage" => "image",
        "promptText" => "prompt",
        "negativePrompt" => "negative_prompt",
        "contentModeration" | "publicFigureThreshold" => "public_figure_threshold",
        "lastFrame" | "last_frame" => "last_frame",
        other => other,
    }
}

fn rule_of(e: &Error) -> String {
    match e {
        Error::InvalidInput { rule, .. } => rule.clone(),
        other => other.to_string(),
    }
}

fn print_plan(planned: &[Planned], args: &BatchArgs, journal: &Path, json: bool) {
    let journal_note = if journal.exists() { "exists: a run resumes from it" } else { "new" };
    for p in planned {
        let output = p.item.output.clone().unwrap_or_else(|| format!("{:04}-<task id>.mp4", p.item.line));
        let body = p.request.build().ok().and_then(|b| serde_json::to_value(b).ok()).unwrap_or(Value::Null);
        let mut body = body;
        if let Some(image) = body.get_mut("promptImage") {
            // A local image is inlined as a data URI: show its file name, not megabytes of base64.
            if image.as_str().is_some_and(|s| s.starts_with("data:")) {
                *image = json!(format!("<{}>", p.item.image));
            }
        }
        if json {
            output::json_line(&json!({"line": p.item.line, "output": args.out_dir.join(&output), "request": body}));
        } else {
            output::text(&output::clean(&format!(
                "line {}: {} -> {}",
                p.item.line,
                body,
                args.out_dir.join(&output).display()
            )));
        }
    }
    let summary = format!(
        "{} items valid; journal {} ({journal_note}); nothing was sent (--dry-run)",
        planned.len(),
        journal.display()
    );
    if json {
        output::json_line(&json!({"summary": {"items": planned.len(), "journal": journal, "dry_run": true}}));
    } else {
        eprintln!("{summary}");
    }
}

fn resume_command(args: &BatchArgs, journal: &Path) -> String {
    let mut cmd =
        format!("cometapi-runway batch --input {} --out-dir {}", shell_word(&args.input), shell_word(&args.out_dir));
    if args.journal.is_some() {
        cmd.push_str(&format!(" --journal {}", shell_word(journal)));
    }
    cmd
}

fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// How the items ended, counted.
#[derive(Default)]
struct Tally {
    saved: usize,
    already_saved: usize,
    failed: usize,
    uncertain: usize,
    not_started: usize,
    interrupted: usize,
}

impl Tally {
    fn add(&mut self, result: &BatchResult) {
        match &result.outcome {
            BatchOutcome::Saved { .. } => self.saved += 1,
            BatchOutcome::AlreadySaved { .. } => self.already_saved += 1,
            BatchOutcome::Failed(_) => self.failed += 1,
            BatchOutcome::Uncertain { .. } => self.uncertain += 1,
            BatchOutcome::NotStarted { .. } => self.not_started += 1,
            BatchOutcome::Interrupted => self.interrupted += 1,
            _ => self.failed += 1,
        }
    }

    fn object(&self, total: usize, journal: &Path, exit_code: u8) -> Value {
        json!({
            "items": total, "saved": self.saved, "already_saved": self.already_saved, "failed": self.failed,
            "uncertain": self.uncertain, "not_started": self.not_started, "interrupted": self.interrupted,
            "journal": journal, "exit_code": exit_code,
        })
    }

    fn text(&self, total: usize) -> String {
        let mut parts = vec![format!("{} saved", self.saved)];
        for (n, what) in [
            (self.already_saved, "already saved"),
            (self.failed, "failed"),
            (self.uncertain, "uncertain"),
            (self.not_started, "not started"),
            (self.interrupted, "interrupted (still rendering)"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        format!("batch of {total}: {}", parts.join(", "))
    }
}

/// One finished item as a JSON object.
fn result_object(result: &BatchResult, line: usize) -> Value {
    let (status, extra) = match &result.outcome {
        BatchOutcome::Saved { bytes } => ("saved", json!({"bytes": bytes})),
        BatchOutcome::AlreadySaved { bytes } => ("already_saved", json!({"bytes": bytes})),
        BatchOutcome::Failed(e) => ("failed", json!({"error": error_object(e)})),
        BatchOutcome::Uncertain { error } => ("uncertain", json!({"error": error.as_ref().map(error_object)})),
        BatchOutcome::NotStarted { .. } => ("not_started", json!({})),
        BatchOutcome::Interrupted => ("interrupted", json!({})),
        _ => ("failed", json!({})),
    };
    let mut object = json!({"line": line, "status": status, "task_id": result.task_id, "file": result.output});
    if let (Value::Object(o), Value::Object(extra)) = (&mut object, extra) {
        o.extend(extra);
    }
    object
}

fn error_object(e: &Error) -> Value {
    let failure = Failure::from(clone_error(e));
    json!({
        "kind": failure.kind, "message": failure.message, "retry_may_help": e.retry_may_help(),
        "failure_code": e.code(),
    })
}

/// `Error` is not `Clone` (it may hold a `reqwest::Error`): its text and class are enough here.
pub fn clone_error(e: &Error) -> Error {
    match e {
        Error::TaskFailed { task } => Error::TaskFailed { task: task.clone() },
        Error::TaskCancelled { task } => Error::TaskCancelled { task: task.clone() },
        Error::Api { status, code, message, body, retry_after } => Error::Api {
            status: *status,
            code: code.clone(),
            message: message.clone(),
            body: body.clone(),
            retry_after: *retry_after,
        },
        Error::Transport { message, timeout, .. } => {
            Error::Transport { message: message.clone(), timeout: *timeout, source: None }
        }
        other => Error::Decode { message: other.to_string(), body: String::new() },
    }
}
