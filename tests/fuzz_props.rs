//! Property tests: the decoders and parsers never panic on anything a server, a proxy or a user
//! can hand them, and what they accept obeys the crate's rules. Bounded case counts keep this in
//! the normal suite; the long runs are the `cargo fuzz` targets in `fuzz/` (docs/RELIABILITY.md).

use cometapi_runway::{
    decode_error_body, Catalogue, Error, ImageToVideo, Ratio, Task, TaskStatus, PROMPT_TEXT_MAX_UTF16, SEED_MAX,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const CASES: u32 = 512;

/// Keys the decoders look for, mixed with arbitrary ones, so generated objects reach deep paths.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "id", "status", "progress", "output", "failure", "failureCode", "createdAt", "code", "message",
            "data", "task_id", "action", "fail_reason", "submit_time", "start_time", "finish_time",
            "result_url", "video_url", "error", "type",
        ])
        .prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

/// Statuses from both vocabularies, odd spellings and arbitrary text.
fn status_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "CANCELED", "NOT_START",
            "SUBMITTED", "QUEUED", "IN_PROGRESS", "SUCCESS", "FAILURE", "UNKNOWN", " running ", "succeeded",
        ])
        .prop_map(str::to_string),
        1 => ".{0,16}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        (-2.0f64..3.0).prop_map(Value::from),
    ]
}

/// Progress as servers send it: fractions, percents, percent strings, junk.
fn progress() -> impl Strategy<Value = Value> {
    prop_oneof![
        number(),
        (-50.0f64..250.0).prop_map(|p| Value::from(format!("{p}%"))),
        "[0-9. %eE+-]{0,8}".prop_map(Value::from),
        Just(Value::Null),
        Just(json!([0.5])),
    ]
}

/// Any JSON value, biased towards the keys and statuses of this API.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        ".{0,24}".prop_map(Value::String),
        status_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plain Runway task with arbitrary values in every field.
fn plain_task() -> impl Strategy<Value = Value> {
    (".{0,12}", status_text(), prop::option::of(progress()), prop::option::of(prop::collection::vec(".{0,20}", 0..4)))
        .prop_map(|(id, status, progress, output)| {
            let mut t = Map::new();
            t.insert("id".into(), id.into());
            t.insert("status".into(), status.into());
            if let Some(p) = progress {
                t.insert("progress".into(), p);
            }
            if let Some(o) = output {
                t.insert("output".into(), o.into());
            }
            Value::Object(t)
        })
}

/// A CometAPI envelope, with or without a nested Runway task.
fn envelope() -> impl Strategy<Value = Value> {
    (
        prop::option::of(status_text()),
        prop::option::of(progress()),
        prop::option::of(plain_task()),
        prop::option::of(any::<i64>()),
        prop::option::of(".{0,20}"),
    )
        .prop_map(|(status, progress, nested, submit_time, result_url)| {
            json!({"code": "success", "message": "", "data": {
                "task_id": "g1", "status": status, "progress": progress, "data": nested,
                "submit_time": submit_time, "result_url": result_url, "fail_reason": ""}})
        })
}

/// What every decoded task must satisfy.
fn check_task(task: &Task) {
    if let Some(p) = task.progress {
        assert!((0.0..=1.0).contains(&p), "progress {p} outside 0..=1");
    }
    if task.status == TaskStatus::Succeeded {
        assert_eq!(task.progress, Some(1.0), "a finished task is complete");
    }
    assert!(task.output.iter().all(|u| !u.is_empty()), "no empty output URL");
    assert_eq!(task.status, TaskStatus::parse(&task.raw_status), "status normalised from raw_status");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn task_decoder_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(task) = Task::from_json(&body) {
            check_task(&task);
        }
    }

    #[test]
    fn task_decoder_never_panics_on_json(value in json_value()) {
        if let Ok(task) = Task::from_json(value.to_string().as_bytes()) {
            check_task(&task);
        }
    }

    #[test]
    fn every_plain_task_decodes_with_its_id_and_status(value in plain_task()) {
        let task = Task::from_json(value.to_string().as_bytes()).unwrap();
        check_task(&task);
        prop_assert_eq!(&task.id, value["id"].as_str().unwrap());
        prop_assert_eq!(&task.raw_status, value["status"].as_str().unwrap());
    }

    #[test]
    fn every_envelope_with_data_decodes(value in envelope()) {
        let task = Task::from_json(value.to_string().as_bytes()).unwrap();
        check_task(&task);
        if value["data"]["data"].is_object() {
            prop_assert_eq!(&task.id, value["data"]["data"]["id"].as_str().unwrap(), "the nested task wins");
        }
    }

    #[test]
    fn status_parsing_is_total_and_stable(text in ".{0,24}") {
        let status = TaskStatus::parse(&text);
        // A known status prints as Runway spells it and reads back as itself.
        if !matches!(status, TaskStatus::Unknown(_)) {
            prop_assert_eq!(TaskStatus::parse(&status.to_string()), status);
        }
    }

    #[test]
    fn error_body_decoder_never_panics(body in prop::collection::vec(any::<u8>(), 0..512), value in json_value()) {
        for bytes in [body, value.to_string().into_bytes()] {
            let (code, message) = decode_error_body(&bytes);
            prop_assert!(code.is_none_or(|c| !c.trim().is_empty()));
            prop_assert!(message.is_none_or(|m| !m.trim().is_empty()));
        }
    }

    #[test]
    fn error_body_decoder_finds_the_code_in_every_shape(code in "[a-z_]{1,20}", message in "[ -~]{1,40}") {
        let shapes = [
            json!({"code": code, "message": message, "data": null}),
            json!({"error": {"message": message, "type": "t", "code": code}}),
        ];
        for body in shapes {
            let (c, m) = decode_error_body(body.to_string().as_bytes());
            prop_assert_eq!(c.as_deref(), Some(code.as_str()));
            prop_assert_eq!(m.as_deref(), Some(message.as_str()).filter(|m| !m.trim().is_empty()));
        }
    }

    #[test]
    fn ratio_parser_never_panics(text in ".{0,32}") {
        if let Ok(ratio) = Ratio::parse(&text) {
            prop_assert!(Ratio::ALL.contains(&ratio));
        }
    }

    #[test]
    fn every_valid_ratio_round_trips_in_any_spelling(
        ratio in prop::sample::select(Ratio::ALL.to_vec()),
        sep in prop::sample::select(vec![":", "x", "X", " : ", " x "]),
        pad in prop::sample::select(vec!["", " ", "\t", "  "]),
    ) {
        let text = format!("{pad}{}{sep}{}{pad}", ratio.width(), ratio.height());
        prop_assert_eq!(Ratio::parse(&text).unwrap(), ratio);
        prop_assert_eq!(Ratio::parse(&ratio.to_string()).unwrap(), ratio);
        // 1920:1080 and 1280:720 share an aspect: the closest is one with the same aspect.
        let closest = Ratio::closest_to(ratio.width(), ratio.height()).unwrap();
        prop_assert_eq!(closest.aspect(), ratio.aspect());
    }

    /// The simulator runs this validator on bodies from any client: arbitrary JSON, biased towards
    /// the request's keys and values, may be refused, never panics, and what passes has the
    /// required fields.
    #[test]
    fn create_body_validator_never_panics_on_any_json(
        fields in prop::collection::btree_map(
            prop::sample::select(vec![
                "promptImage", "model", "seed", "promptText", "watermark", "duration", "ratio",
                "contentModeration", "audio", "negativePrompt", "other",
            ]),
            prop_oneof![
                json_value(),
                prop::sample::select(vec![
                    "https://example.com/a.jpg", "data:image/png;base64,iVBORw0KGgo=", "data:image/gif;base64,R0lGOD",
                    "https://u:p@ex ample.com/x", "veo3.1", "gen4.5", "gen3a_turbo", "1920:1080", "first", "last", "data:",
                ])
                .prop_map(Value::from),
                (prop::sample::select(vec!["first", "last", "middle"]), ".{0,20}")
                    .prop_map(|(p, u)| json!([{"uri": format!("https://example.com/{u}"), "position": p}])),
                number(),
            ],
            0..8,
        ),
        model_rules in any::<bool>(),
    ) {
        let body = Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        if Catalogue::builtin().check(&body, model_rules).is_ok() {
            prop_assert!(body.get("promptImage").is_some() && body["model"].is_string(), "{body}");
        }
    }

    #[test]
    fn request_builder_never_panics_and_only_accepts_what_the_rules_allow(
        image in prop_oneof![".{0,40}", "https://[a-z]{1,10}\\.com/[a-z]{0,10}\\.jpg", "data:image/png;base64,[A-Za-z0-9]{0,8}"],
        prompt in prop::option::of(prop_oneof![".{0,40}", "\\PC{500,530}"]),
        model in prop::option::of(prop_oneof![".{0,16}", "gen[34]a?_turbo"]),
        seed in prop::option::of(prop_oneof![0u64..=SEED_MAX + 2, any::<u64>()]),
        duration in prop::option::of(prop_oneof![0u32..12, any::<u32>()]),
        ratio in prop::option::of(prop::sample::select(Ratio::ALL.to_vec())),
        watermark in any::<bool>(),
    ) {
        let mut request = ImageToVideo::new(image.clone()).watermark(watermark);
        if let Some(p) = &prompt { request = request.prompt_text(p.clone()); }
        if let Some(m) = &model { request = request.model(m.as_str()); }
        if let Some(s) = seed { request = request.seed(s); }
        if let Some(d) = duration { request = request.duration(d); }
        if let Some(r) = ratio { request = request.ratio(r); }
        match request.build() {
            Ok(body) => {
                prop_assert!(image.starts_with("https://") || image.starts_with("data:image/"), "{image:?}");
                prop_assert!(seed.is_none_or(|s| s <= SEED_MAX));
                let rules = model.as_deref().map_or(Catalogue::builtin().get("gen3a_turbo"), |m| Catalogue::builtin().get(m));
                match rules {
                    Some(rules) => {
                        prop_assert!(duration.is_none_or(|d| rules.durations.contains(&d)));
                        prop_assert!(ratio.is_none_or(|r| rules.ratios.iter().any(|known| known == r.as_str())));
                    }
                    None => prop_assert!(duration.is_none_or(|d| d >= 1)),
                }
                let prompt_ok = prompt
                    .as_ref()
                    .is_none_or(|p| !p.trim().is_empty() && p.encode_utf16().count() <= PROMPT_TEXT_MAX_UTF16);
                prop_assert!(prompt_ok, "{prompt:?}");
                let wire = serde_json::to_value(&body).unwrap();
                prop_assert_eq!(wire["promptImage"].as_str(), Some(image.as_str()));
                // Only `true` is sent: the service's default is no watermark.
                prop_assert_eq!(wire.get("watermark").and_then(|w| w.as_bool()), watermark.then_some(true));
            }
            Err(err) => prop_assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}"),
        }
    }
}

/// Found by the fuzzer and by `every_envelope_with_data_decodes`: a submit time past year 9999
/// made the RFC 3339 formatting panic.
#[test]
fn a_submit_time_past_year_9999_is_ignored_not_a_panic() {
    for submit_time in [253_402_300_800i64, 3_546_546_733_532, i64::MAX] {
        let body =
            json!({"code": "success", "data": {"task_id": "g1", "status": "QUEUED", "submit_time": submit_time}});
        let task = Task::from_json(body.to_string().as_bytes()).unwrap();
        assert_eq!(task.created_at, None, "{submit_time}");
    }
}
