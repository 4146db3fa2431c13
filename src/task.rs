//! One `Task` type, whichever of its two shapes the poll route answered in.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::types;

/// Where a task is in its life. Gateway statuses are mapped onto Runway's; a status this crate
/// does not know yet is kept as [`TaskStatus::Unknown`] and treated as "still working".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Queued, not started.
    Pending,
    /// Held back by Runway's rate limits; it will run.
    Throttled,
    /// Rendering.
    Running,
    /// Done; `output` has the video URLs.
    Succeeded,
    /// Ended in failure; see `failure` and `failure_code`.
    Failed,
    /// Cancelled.
    Cancelled,
    /// A status this crate does not know, as the server spelled it.
    #[serde(untagged)]
    Unknown(String),
}

impl TaskStatus {
    /// Reads a Runway status (`PENDING`, ...) or a gateway status (`QUEUED`, `SUCCESS`, ...).
    pub fn parse(text: &str) -> TaskStatus {
        let trimmed = text.trim();
        let is = |names: &[&str]| names.iter().any(|name| name.eq_ignore_ascii_case(trimmed));
        if is(&["PENDING", "NOT_START", "SUBMITTED", "QUEUED"]) {
            TaskStatus::Pending
        } else if is(&["THROTTLED"]) {
            TaskStatus::Throttled
        } else if is(&["RUNNING", "IN_PROGRESS"]) {
            TaskStatus::Running
        } else if is(&["SUCCEEDED", "SUCCESS"]) {
            TaskStatus::Succeeded
        } else if is(&["FAILED", "FAILURE"]) {
            TaskStatus::Failed
        } else if is(&["CANCELLED", "CANCELED"]) {
            TaskStatus::Cancelled
        } else {
            TaskStatus::Unknown(text.to_string())
        }
    }

    /// True once the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::Throttled => "THROTTLED",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Succeeded => "SUCCEEDED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Cancelled => "CANCELLED",
            TaskStatus::Unknown(s) => s,
        })
    }
}

/// Which shape the server answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Shape {
    /// Runway's own task object.
    Plain,
    /// CometAPI's `{code, message, data}` envelope.
    Envelope,
}

/// A task, normalised from either response shape.
///
/// ```
/// use cometapi_runway::{Task, TaskStatus};
/// let task = Task::from_json(br#"{"code":"success","message":"","data":{"task_id":"t1",
///     "status":"IN_PROGRESS","progress":"35%","data":{"id":"t1","status":"RUNNING"}}}"#).unwrap();
/// assert_eq!(task.status, TaskStatus::Running);
/// assert_eq!(task.progress, Some(0.35));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Task {
    /// The task id.
    pub id: String,
    /// Normalised status; the nested Runway status wins over the gateway's.
    pub status: TaskStatus,
    /// Completion, 0..=1, when reported (1 once succeeded).
    pub progress: Option<f64>,
    /// Output URLs (hosted elsewhere, fetched without the key, expiring in 24–48 h).
    pub output: Vec<String>,
    /// Human-readable failure text.
    pub failure: Option<String>,
    /// Dot-separated failure code, general to specific (`SAFETY.INPUT.IMAGE`).
    pub failure_code: Option<String>,
    /// Creation time, RFC 3339, as the server gave it (or from the gateway's submit time).
    pub created_at: Option<String>,
    /// The status string as the server sent it (gateway status for the envelope if no nested one).
    pub raw_status: String,
    /// Which shape the server answered in.
    pub shape: Shape,
}

impl Task {
    /// Decodes a poll answer in either shape. Errors are `serde_json`'s; an envelope whose
    /// `data` is null has no task and is an error.
    pub fn from_json(body: &[u8]) -> Result<Task, serde_json::Error> {
        let response = match decode_response(body) {
            Ok(response) => response,
            Err(e) => without_incomplete_nested_task(body).ok_or(e)?,
        };
        Task::try_from(response).map_err(|code| {
            <serde_json::Error as serde::de::Error>::custom(format!("envelope without a task (code {code:?})"))
        })
    }

    /// True once the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    fn from_runway(t: types::RunwayTask, shape: Shape) -> Task {
        let status = TaskStatus::parse(&t.status);
        let mut task = Task {
            progress: t.progress.as_ref().and_then(progress_fraction),
            output: t.output.unwrap_or_default().into_iter().filter(|u| !u.is_empty()).collect(),
            failure: non_empty(t.failure),
            failure_code: non_empty(t.failure_code),
            created_at: non_empty(t.created_at),
            raw_status: t.status,
            id: t.id,
            status,
            shape,
        };
        task.settle();
        task
    }

    /// Success means complete, whatever the last progress report said.
    fn settle(&mut self) {
        if self.status == TaskStatus::Succeeded {
            self.progress = Some(1.0);
        }
    }
}

impl TryFrom<types::TaskResponse> for Task {
    /// The envelope's `code` when it carries no task (e.g. `task_not_exist`).
    type Error = String;

    fn try_from(response: types::TaskResponse) -> Result<Task, String> {
        let envelope = match response {
            types::TaskResponse::RunwayTask(t) => return Ok(Task::from_runway(t, Shape::Plain)),
            types::TaskResponse::CometEnvelope(e) => e,
        };
        let Some(g) = envelope.data else { return Err(envelope.code) };
        let gateway_progress = g.progress.as_ref().and_then(progress_fraction);
        let mut extra_output: Vec<String> =
            [g.result_url, g.video_url].into_iter().flatten().filter(|u| !u.is_empty()).collect();
        let mut task = match g.data {
            Some(nested) => {
                let mut task = Task::from_runway(nested, Shape::Envelope);
                if task.progress.is_none() {
                    task.progress = gateway_progress;
                }
                if task.failure.is_none() {
                    task.failure = non_empty(g.fail_reason);
                }
                task
            }
            None => {
                let raw_status = g.status.unwrap_or_default();
                Task {
                    id: g.task_id.unwrap_or_default(),
                    status: TaskStatus::parse(&raw_status),
                    progress: gateway_progress,
                    output: Vec::new(),
                    failure: non_empty(g.fail_reason),
                    failure_code: None,
                    created_at: None,
                    raw_status,
                    shape: Shape::Envelope,
                }
            }
        };
        extra_output.retain(|u| !task.output.contains(u));
        task.output.extend(extra_output);
        if task.created_at.is_none() {
            task.created_at = g
                .submit_time
                // RFC 3339 ends at year 9999; formatting a later time panics (found by fuzzing).
                .filter(|t| *t > 0 && *t < 253_402_300_800)
                .map(|t| humantime::format_rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64)).to_string());
        }
        task.settle();
        Ok(task)
    }
}

/// An envelope whose nested Runway task is incomplete (`{}`, only an id: the gateway may hold
/// just part of the upstream task right after submission), read from the gateway record alone.
/// Decodes a poll answer into the generated [`types::TaskResponse`] as its derived decoder
/// does — the envelope when the body is one, else Runway's task — but without what
/// serde does for an untagged enum: buffer the whole body into a generic tree, then try each
/// shape on it, building an error message for each miss. On a typical poll that buffering cost
/// more client CPU than all of the crate's other work (BENCHMARKS.md).
///
/// Each shape's own generated decoder reads the body directly instead. The envelope is tried
/// first only when the body has a `"code"` key, which every envelope has; a body that is not an
/// envelope never pays for that attempt. `decode_response_is_the_generated_decoder` checks the
/// two agree on every body (but one that is both shapes at once and spells `code` with
/// escapes, which no server sends).
pub(crate) fn decode_response(body: &[u8]) -> Result<types::TaskResponse, serde_json::Error> {
    let envelope = || serde_json::from_slice::<types::CometEnvelope>(body).map(types::TaskResponse::CometEnvelope);
    let may_be_envelope = body.windows(6).any(|w| w == b"\"code\"");
    if may_be_envelope {
        if let Ok(response) = envelope() {
            return Ok(response);
        }
    }
    serde_json::from_slice::<types::RunwayTask>(body).map(types::TaskResponse::RunwayTask).or_else(|e| {
        // A `code` key written with escapes (`"\u0063ode"`) is still the key `code`.
        if !may_be_envelope {
            if let Ok(response) = envelope() {
                return Ok(response);
            }
        }
        Err(if e.is_syntax() || e.is_eof() {
            e
        } else {
            <serde_json::Error as serde::de::Error>::custom(
                "data did not match any variant of untagged enum TaskResponse",
            )
        })
    })
}

/// An envelope the strict decoder refused because its nested Runway task is incomplete, read
/// without that nested task (its gateway fields still make a task); `None` for anything else.
pub(crate) fn without_incomplete_nested_task(body: &[u8]) -> Option<types::TaskResponse> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get_mut("data")?.as_object_mut()?.remove("data")?;
    serde_json::from_value(value).ok()
}

/// Reads progress as a fraction: `0.35`, `"35%"`, `"0.35"`, or a percent number above 1.
fn progress_fraction(value: &serde_json::Value) -> Option<f64> {
    let (number, percent) = match value {
        serde_json::Value::Number(n) => (n.as_f64()?, false),
        serde_json::Value::String(s) => {
            let s = s.trim();
            match s.strip_suffix('%') {
                Some(p) => (p.trim().parse::<f64>().ok()?, true),
                None => (s.parse::<f64>().ok()?, false),
            }
        }
        _ => return None,
    };
    if !number.is_finite() {
        return None;
    }
    let fraction = if percent || number > 1.0 { number / 100.0 } else { number };
    Some(fraction.clamp(0.0, 1.0))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// JSON objects built from the keys of both shapes, each value mostly of its right type and
    /// sometimes not, each key mostly present, nested as the envelope nests: bodies that are one
    /// shape, the other, neither, or a near miss of either.
    fn poll_body(depth: u32) -> BoxedStrategy<serde_json::Value> {
        let text = || {
            prop_oneof![
                8 => prop::sample::select(vec!["t1", "RUNNING", "SUCCESS", "success", "35%", "", "task_not_exist"])
                    .prop_map(|s| json!(s)),
                1 => Just(json!(null)),
                1 => any::<i32>().prop_map(|n| json!(n)),
            ]
            .boxed()
        };
        let number = || prop_oneof![4 => any::<i32>().prop_map(|n| json!(n)), 1 => Just(json!("12"))].boxed();
        let mut fields: Vec<(&str, BoxedStrategy<serde_json::Value>)> = [
            "id",
            "status",
            "code",
            "message",
            "failure",
            "failureCode",
            "createdAt",
            "task_id",
            "fail_reason",
            "action",
            "video_url",
        ]
        .into_iter()
        .map(|k| (k, text()))
        .collect();
        fields.push(("submit_time", number()));
        fields.push(("progress", prop_oneof![number(), text(), (0.0..1.0f64).prop_map(|n| json!(n)).boxed()].boxed()));
        fields.push((
            "output",
            prop_oneof![prop::collection::vec("[a-z:/.]{0,12}", 0..3).prop_map(|v| json!(v)), text()].boxed(),
        ));
        let data =
            if depth == 0 { Just(json!(null)).boxed() } else { prop_oneof![text(), poll_body(depth - 1)].boxed() };
        fields.push(("data", data));
        let present: Vec<_> = fields
            .into_iter()
            .map(|(k, v)| prop::option::weighted(0.6, v).prop_map(move |v| v.map(|v| (k, v))))
            .collect();
        present
            .prop_map(|kv| {
                json!(kv.into_iter().flatten().map(|(k, v)| (k.to_string(), v)).collect::<serde_json::Map<_, _>>())
            })
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn decode_response_is_the_generated_decoder(body in poll_body(2)) {
            let bytes = body.to_string().into_bytes();
            let generated = serde_json::from_slice::<types::TaskResponse>(&bytes);
            let fast = decode_response(&bytes);
            prop_assert_eq!(fast.as_ref().ok(), generated.as_ref().ok(), "{}", body);
        }
    }

    #[test]
    fn decode_response_reads_both_shapes_and_refuses_others() {
        let plain = br#"{"id":"t1","status":"RUNNING","progress":0.5}"#;
        assert!(matches!(decode_response(plain), Ok(types::TaskResponse::RunwayTask(_))));
        let envelope = br#"{"code":"success","message":"","data":{"task_id":"t1","status":"IN_PROGRESS"}}"#;
        assert!(matches!(decode_response(envelope), Ok(types::TaskResponse::CometEnvelope(_))));
        let escaped = br#"{"code":"task_not_exist","message":"","data":null}"#;
        assert!(matches!(decode_response(escaped), Ok(types::TaskResponse::CometEnvelope(_))));
        let neither = decode_response(br#"{"hello":1}"#).unwrap_err().to_string();
        assert!(neither.contains("did not match any variant"), "{neither}");
        assert!(decode_response(b"<html>").unwrap_err().is_syntax());
    }

    fn task(v: serde_json::Value) -> Task {
        Task::from_json(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn progress_reads_numbers_and_percent_strings() {
        for (v, want) in [
            (json!(0.35), Some(0.35)),
            (json!("35%"), Some(0.35)),
            (json!(" 100 % "), Some(1.0)),
            (json!("0.5"), Some(0.5)),
            (json!(35), Some(0.35)),
            (json!(250), Some(1.0)),
            (json!(-3), Some(0.0)),
            (json!("soon"), None),
            (json!(null), None),
            (json!([1]), None),
        ] {
            assert_eq!(progress_fraction(&v), want, "{v}");
        }
    }

    #[test]
    fn gateway_statuses_map_onto_runway_statuses() {
        for (g, want) in [
            ("NOT_START", TaskStatus::Pending),
            ("SUBMITTED", TaskStatus::Pending),
            ("QUEUED", TaskStatus::Pending),
            ("IN_PROGRESS", TaskStatus::Running),
            ("SUCCESS", TaskStatus::Succeeded),
            ("FAILURE", TaskStatus::Failed),
            ("UNKNOWN", TaskStatus::Unknown("UNKNOWN".into())),
            // Case and surrounding blanks do not matter; an unknown status keeps its spelling.
            (" in_progress ", TaskStatus::Running),
            ("Succeeded", TaskStatus::Succeeded),
            ("Paused", TaskStatus::Unknown("Paused".into())),
        ] {
            let t = task(json!({"code": "success", "data": {"task_id": "g", "status": g}}));
            assert_eq!(t.status, want, "{g}");
            assert_eq!(t.shape, Shape::Envelope);
        }
    }

    #[test]
    fn nested_runway_status_wins_over_the_gateway() {
        let t = task(json!({"code": "success", "data": {"task_id": "g", "status": "SUCCESS",
            "data": {"id": "r", "status": "RUNNING", "progress": 0.5}}}));
        assert_eq!((t.status, t.progress, t.id.as_str()), (TaskStatus::Running, Some(0.5), "r"));
    }

    #[test]
    fn outputs_are_gathered_from_every_place_without_duplicates() {
        let t = task(json!({"code": "success", "data": {"task_id": "g", "status": "SUCCESS",
            "result_url": "https://cdn/a.mp4", "video_url": "https://cdn/b.mp4",
            "data": {"id": "g", "status": "SUCCEEDED", "output": ["https://cdn/a.mp4"]}}}));
        assert_eq!(t.output, ["https://cdn/a.mp4", "https://cdn/b.mp4"]);
        assert_eq!(t.progress, Some(1.0));
    }

    #[test]
    fn submit_time_stands_in_for_created_at() {
        let t =
            task(json!({"code": "success", "data": {"task_id": "g", "status": "QUEUED", "submit_time": 1773366766}}));
        assert_eq!(t.created_at.as_deref(), Some("2026-03-13T01:52:46Z"));
    }

    #[test]
    fn envelope_without_data_is_not_a_task() {
        let err = Task::from_json(br#"{"code":"task_not_exist","message":"task_not_exist","data":null}"#).unwrap_err();
        assert!(err.to_string().contains("task_not_exist"), "{err}");
    }
}
