//! The spec's own examples decode with the crate: every `example` and `examples` value of every
//! media type, dispatched by the schema it illustrates. An example for a schema this test does
//! not know fails it, so a new example cannot go unchecked.

mod common;

use cometapi_runway::{decode_error_body, types, ImageToVideo, KeyframePosition, Ratio, Shape, Task, TaskStatus};
use serde_json::Value;

/// One example: where it is in the spec, the schema it illustrates, and its value.
#[derive(Debug)]
struct Example {
    at: String,
    schema: String,
    value: Value,
}

/// Every example of every media type (an object with a `schema` and `example`/`examples`).
fn examples(spec: &Value) -> Vec<Example> {
    fn walk(node: &Value, at: &str, out: &mut Vec<Example>) {
        match node {
            Value::Object(map) => {
                if let Some(schema) = map.get("schema") {
                    let name = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or("(inline)");
                    let mut push = |at: String, value: &Value| {
                        out.push(Example { at, schema: name.to_string(), value: value.clone() })
                    };
                    if let Some(value) = map.get("example") {
                        push(format!("{at}/example"), value);
                    }
                    for (key, example) in map.get("examples").and_then(Value::as_object).into_iter().flatten() {
                        push(format!("{at}/examples/{key}"), &example["value"]);
                    }
                }
                for (key, child) in map {
                    walk(child, &format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, "", &mut out);
    out
}

fn examples_of(schema: &str) -> Vec<Example> {
    let all = examples(&common::spec());
    let known = ["ImageToVideoRequest", "CreateTaskResponse", "TaskResponse", "ErrorBody", "(inline)"];
    for e in &all {
        assert!(known.contains(&e.schema.as_str()), "no check for the example at {} ({})", e.at, e.schema);
    }
    all.into_iter().filter(|e| e.schema == schema).collect()
}

/// The same request made with the crate's builder, so the builder's rules see the example.
fn through_the_builder(example: &Value) -> ImageToVideo {
    let text = |key: &str| example[key].as_str().map(str::to_string);
    let mut request = match &example["promptImage"] {
        Value::Array(frames) => ImageToVideo::from_keyframes(frames.iter().map(|f| {
            let position = if f["position"] == "last" { KeyframePosition::Last } else { KeyframePosition::First };
            (position, f["uri"].as_str().expect("uri").to_string())
        })),
        other => ImageToVideo::new(other.as_str().expect("promptImage")),
    };
    if let Some(model) = text("model") {
        request = request.model(model);
    }
    if let Some(prompt) = text("promptText") {
        request = request.prompt_text(prompt);
    }
    if let Some(seed) = example["seed"].as_u64() {
        request = request.seed(seed);
    }
    if let Some(watermark) = example["watermark"].as_bool() {
        request = request.watermark(watermark);
    }
    if let Some(duration) = example["duration"].as_u64() {
        request = request.duration(duration as u32);
    }
    if let Some(ratio) = text("ratio") {
        request = request.ratio(Ratio::parse(&ratio).unwrap());
    }
    if let Some(threshold) = example["contentModeration"]["publicFigureThreshold"].as_str() {
        request = request.public_figure_threshold(threshold.parse().unwrap());
    }
    if let Some(audio) = example["audio"].as_bool() {
        request = request.audio(audio);
    }
    if let Some(text) = text("negativePrompt") {
        request = request.negative_prompt(text);
    }
    request
}

#[test]
fn request_examples_decode_into_the_generated_type_and_pass_validation() {
    let found = examples_of("ImageToVideoRequest");
    assert!(found.len() >= 3, "the minimal, the full and the keyframes example: {found:?}");

    for Example { at, value, .. } in found {
        let decoded: types::ImageToVideoRequest =
            serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
        // Every field of the example survives the round trip unchanged.
        let encoded = serde_json::to_value(&decoded).unwrap();
        for (key, v) in value.as_object().unwrap() {
            assert_eq!(&encoded[key], v, "{at}: {key}");
        }
        let built = through_the_builder(&value).build().unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(built, decoded, "{at}");
    }
}

#[test]
fn create_response_examples_decode() {
    let found = examples_of("CreateTaskResponse");
    assert!(!found.is_empty());

    for Example { at, value, .. } in found {
        let decoded: types::CreateTaskResponse = serde_json::from_value(value).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(!decoded.id.is_empty(), "{at}");
    }
}

#[test]
fn task_examples_decode_into_a_task_with_a_known_status() {
    let found = examples_of("TaskResponse");
    assert!(found.len() >= 2, "both shapes: {found:?}");

    for Example { at, value, .. } in &found {
        let task = Task::from_json(value.to_string().as_bytes()).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(!task.id.is_empty(), "{at}");
        assert!(!matches!(task.status, TaskStatus::Unknown(_)), "{at}: {:?}", task.status);
    }
    let task_at = |name: &str| {
        let e = found.iter().find(|e| e.at.ends_with(name)).unwrap_or_else(|| panic!("no example {name}"));
        Task::from_json(e.value.to_string().as_bytes()).unwrap()
    };
    let plain = task_at("plain_succeeded");
    assert_eq!((plain.status, plain.shape), (TaskStatus::Succeeded, Shape::Plain));
    assert_eq!(plain.output, ["https://cdn.example.com/output.mp4"]);
    let envelope = task_at("envelope_pending");
    assert_eq!((envelope.status, envelope.shape, envelope.progress), (TaskStatus::Pending, Shape::Envelope, Some(0.0)));
    // `data.data: null` (no upstream task yet) is valid and read from the gateway's record.
    let submitted = task_at("envelope_submitted");
    assert_eq!((submitted.status, submitted.shape), (TaskStatus::Pending, Shape::Envelope));
    assert_eq!(submitted.id, "3d957031-9a2a-45e2-9dc7-bc8513059c50");
}

#[test]
fn error_examples_yield_a_code_or_a_message() {
    let found = examples_of("ErrorBody");
    assert!(found.len() >= 3, "gateway, OpenAI-style and Runway errors: {found:?}");

    for Example { at, value, .. } in found {
        let (code, message) = decode_error_body(value.to_string().as_bytes());
        assert!(code.is_some() || message.is_some(), "{at}: {value}");
        if at.ends_with("task_not_exist") {
            assert_eq!(code.as_deref(), Some("task_not_exist"), "{at}");
        }
    }
}

#[test]
fn schema_level_examples_pass_validation() {
    let spec = common::spec();
    let image =
        spec["components"]["schemas"]["PromptImage"]["oneOf"][0]["example"].as_str().expect("the promptImage example");

    ImageToVideo::new(image).build().unwrap();
}

#[test]
fn html_error_page_examples_are_read_as_errors_without_a_code() {
    // The only inline-schema examples: the pages proxies in front send (`text/html`).
    let found = examples_of("(inline)");
    assert!(!found.is_empty(), "an HTML error page example");
    for Example { at, value, .. } in found {
        assert!(at.contains("/text/html/"), "{at}");
        let page = value.as_str().unwrap_or_else(|| panic!("{at}: a page is text"));
        assert!(page.starts_with("<html"), "{at}");
        assert_eq!(decode_error_body(page.as_bytes()), (None, None), "{at}");
    }
}
