//! What goes to stdout: results as plain text or as exactly one JSON object.

use std::io::Write;

use cometapi_runway::Task;
use serde_json::{json, Map, Value};

use crate::exit::Failure;

/// Writes one JSON object as one line on stdout.
pub fn json_line(value: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed pipe is the reader's choice, not an error worth a second message.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Writes text lines on stdout.
pub fn text(lines: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{lines}");
    let _ = out.flush();
}

/// The task as a JSON object, with extra fields merged in (`file`, `bytes`).
pub fn task_object(task: &Task, extra: &[(&str, Value)]) -> Value {
    let mut object = match serde_json::to_value(task) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (key, value) in extra {
        object.insert((*key).to_string(), value.clone());
    }
    Value::Object(object)
}

/// A task for people: one `field: value` per line, empty fields left out.
pub fn task_text(task: &Task) -> String {
    let mut lines = vec![format!("id:         {}", task.id), format!("status:     {}", task.status)];
    if let Some(p) = task.progress {
        lines.push(format!("progress:   {:.0}%", p * 100.0));
    }
    if let Some(c) = &task.created_at {
        lines.push(format!("created at: {c}"));
    }
    for url in &task.output {
        lines.push(format!("output:     {url}"));
    }
    if let Some(f) = &task.failure {
        lines.push(format!("failure:    {f}"));
    }
    if let Some(c) = &task.failure_code {
        lines.push(format!("code:       {c}"));
    }
    lines.join("\n")
}

/// Reports a failure: always one line on stderr; with `--json` also the object on stdout.
pub fn failure(f: &Failure, json: bool) {
    eprintln!("{}", f.line());
    if json && f.json_on_stdout {
        let mut error = json!({"kind": f.kind, "message": f.message, "exit_code": f.code as u8});
        if let Some(id) = &f.task_id {
            error["task_id"] = json!(id);
        }
        let mut object = json!({ "error": error });
        if let Some(task) = &f.task {
            object["task"] = task_object(task, &[]);
        }
        json_line(&object);
    }
}
