//! The model catalogue (the spec's `x-models`) as a contract, walked model by model: every value
//! a model takes is sent exactly as built, every rule it brings is enforced before anything is
//! sent (and by the simulator on receipt), a model the crate does not know is sent as given, and
//! a model added to the spec changes validation with no Rust file touched.
//!
//! Nothing here lists the models: the tables are derived from `Catalogue::builtin()` and the
//! spec, so a model or a rule added to the spec is covered by these tests as it stands.

mod common;

use std::time::Duration;

use cometapi_runway::{
    mock::MockServer as Simulator, Catalogue, Error, ImageToVideo, KeyframePosition, ModelRules, PublicFigureThreshold,
    Ratio, SEED_MAX,
};
use common::{any_request, api_request, client, CREATE_PATH, TASK_ID};
use httpmock::MockServer;
use serde_json::{json, Value};

const FIRST: &str = "https://example.com/first.jpg";
const LAST: &str = "https://example.com/last.jpg";
const PROMPT: &str = "the cat turns into a tiger";
const NEGATIVE: &str = "blurry, low quality";
/// A model no catalogue lists.
const UNKNOWN_MODEL: &str = "gen9_future";

/// Every keyframe set a request can carry: `promptImage` as a plain string is `[first]`.
const KEYFRAME_SETS: [&[KeyframePosition]; 3] =
    [&[KeyframePosition::First], &[KeyframePosition::Last], &[KeyframePosition::First, KeyframePosition::Last]];

// ------------------------------------------------------------------------------------ the tables

/// A request and the body it must go out as.
#[derive(Clone)]
struct Case {
    what: String,
    request: ImageToVideo,
    body: Value,
}

impl Case {
    /// The request with a valid value for the optional `field`, and the body with its wire form.
    fn with(self, field: &str, rules: &ModelRules) -> Case {
        let (request, value) = set_field(self.request, field, rules);
        let mut body = self.body;
        body[field] = value;
        Case { request, body, ..self }
    }

    fn ratio(mut self, ratio: Ratio) -> Case {
        self.request = self.request.ratio(ratio);
        self.body["ratio"] = json!(ratio.as_str());
        self
    }

    fn duration(mut self, seconds: u32) -> Case {
        self.request = self.request.duration(seconds);
        self.body["duration"] = json!(seconds);
        self
    }

    fn named(mut self, what: String) -> Case {
        self.what = what;
        self
    }
}

/// A request that breaks one rule, and how the error must name it.
struct Refused {
    what: String,
    request: ImageToVideo,
    model: String,
    field: String,
    value: String,
    rule: Vec<String>,
}

/// Sets a valid value of an optional request field through the builder; returns its wire form.
/// A property added to the spec needs a builder setter, and a line here.
fn set_field(request: ImageToVideo, field: &str, rules: &ModelRules) -> (ImageToVideo, Value) {
    match field {
        "promptText" => (request.prompt_text(PROMPT), json!(PROMPT)),
        "seed" => (request.seed(42), json!(42)),
        "watermark" => (request.watermark(true), json!(true)),
        "duration" => (request.duration(rules.durations[0]), json!(rules.durations[0])),
        "ratio" => (request.ratio(ratio(&rules.ratios[0])), json!(rules.ratios[0])),
        "contentModeration" => {
            (request.public_figure_threshold(PublicFigureThreshold::Low), json!({"publicFigureThreshold": "low"}))
        }
        "audio" => (request.audio(true), json!(true)),
        "negativePrompt" => (request.negative_prompt(NEGATIVE), json!(NEGATIVE)),
        other => panic!("the spec has a request field {other:?} this test cannot set yet: add a line to set_field"),
    }
}

fn ratio(wire: &str) -> Ratio {
    Ratio::ALL.into_iter().find(|r| r.as_str() == wire).unwrap_or_else(|| panic!("{wire} is not a spec ratio"))
}

fn image_at(position: KeyframePosition) -> &'static str {
    match position {
        KeyframePosition::First => FIRST,
        KeyframePosition::Last => LAST,
    }
}

fn positions(set: &[KeyframePosition]) -> Vec<String> {
    set.iter().map(ToString::to_string).collect()
}

/// `promptImage` on the wire: a lone first frame is a plain string, anything else the list.
fn prompt_image_body(set: &[KeyframePosition]) -> Value {
    match set {
        [KeyframePosition::First] => json!(FIRST),
        frames => frames.iter().map(|p| json!({"uri": image_at(*p), "position": p.to_string()})).collect(),
    }
}

/// A request the model takes: these keyframes and every field it requires, except `skip`.
fn valid(rules: &ModelRules, keyframes: &[KeyframePosition], skip: Option<&str>) -> Case {
    let request = ImageToVideo::from_keyframes(keyframes.iter().map(|p| (*p, image_at(*p)))).model(rules.id.as_str());
    let body = json!({"promptImage": prompt_image_body(keyframes), "model": rules.id});
    let case = Case { what: format!("{} with what it requires", rules.id), request, body };
    rules.requires.iter().filter(|f| Some(f.as_str()) != skip).fold(case, |case, field| case.with(field, rules))
}

fn first_frame_only(rules: &ModelRules) -> Case {
    valid(rules, &[KeyframePosition::First], None)
}

fn models() -> &'static [ModelRules] {
    let models = Catalogue::builtin().models();
    assert!(!models.is_empty(), "the spec's x-models lists no model");
    models
}

/// The optional fields of the create request, from the spec: its properties less the required.
fn optional_fields() -> Vec<String> {
    let schema = &common::spec()["components"]["schemas"]["ImageToVideoRequest"];
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let fields: Vec<String> =
        schema["properties"].as_object().unwrap().keys().filter(|k| !required.contains(&k.as_str())).cloned().collect();
    assert!(fields.iter().any(|f| f == "watermark") && fields.iter().any(|f| f == "audio"), "{fields:?}");
    fields
}

fn allowed_ratios() -> Vec<Case> {
    let mut cases = Vec::new();
    for rules in models() {
        for wire in &rules.ratios {
            cases.push(first_frame_only(rules).ratio(ratio(wire)).named(format!("{} at {wire}", rules.id)));
        }
    }
    cases
}

fn allowed_durations() -> Vec<Case> {
    let mut cases = Vec::new();
    for rules in models() {
        for &seconds in &rules.durations {
            cases.push(first_frame_only(rules).duration(seconds).named(format!("{} for {seconds} s", rules.id)));
        }
    }
    cases
}

fn allowed_keyframes() -> Vec<Case> {
    let mut cases = Vec::new();
    for rules in models() {
        for set in KEYFRAME_SETS.into_iter().filter(|set| rules.allows_keyframes(&as_strs(&positions(set)))) {
            cases.push(valid(rules, set, None).named(format!("{} with keyframes {:?}", rules.id, positions(set))));
        }
    }
    cases
}

fn as_strs(items: &[String]) -> Vec<&str> {
    items.iter().map(String::as_str).collect()
}

fn refused_ratios() -> Vec<Refused> {
    let mut cases = Vec::new();
    for rules in models() {
        for r in Ratio::ALL.into_iter().filter(|r| !rules.ratios.iter().any(|w| w == r.as_str())) {
            cases.push(Refused {
                what: format!("{} at {r}", rules.id),
                request: first_frame_only(rules).ratio(r).request,
                model: rules.id.clone(),
                field: "ratio".into(),
                value: format!("{:?}", r.as_str()),
                rule: std::iter::once("must be one of".to_string()).chain(rules.ratios.iter().cloned()).collect(),
            });
        }
    }
    cases
}

fn refused_durations() -> Vec<Refused> {
    let mut cases = Vec::new();
    for rules in models() {
        let (min, max) = (rules.durations.iter().min().unwrap(), rules.durations.iter().max().unwrap());
        for seconds in (1..=12).filter(|d| !rules.durations.contains(d)) {
            cases.push(Refused {
                what: format!("{} for {seconds} s", rules.id),
                request: first_frame_only(rules).duration(seconds).request,
                model: rules.id.clone(),
                field: "duration".into(),
                value: seconds.to_string(),
                rule: vec!["must be".into(), min.to_string(), max.to_string()],
            });
        }
    }
    cases
}

fn refused_keyframes() -> Vec<Refused> {
    let mut cases = Vec::new();
    for rules in models() {
        for set in KEYFRAME_SETS.into_iter().filter(|set| !rules.allows_keyframes(&as_strs(&positions(set)))) {
            let allowed = rules.keyframes.iter().map(|set| format!("[{}]", set.join(", ")));
            cases.push(Refused {
                what: format!("{} with keyframes {:?}", rules.id, positions(set)),
                request: valid(rules, set, None).request,
                model: rules.id.clone(),
                field: "promptImage".into(),
                value: format!("(keyframes [{}])", positions(set).join(", ")),
                rule: std::iter::once("keyframe positions must be".to_string()).chain(allowed).collect(),
            });
        }
    }
    cases
}

fn missing_required() -> Vec<Refused> {
    let mut cases = Vec::new();
    for rules in models() {
        for field in &rules.requires {
            cases.push(Refused {
                what: format!("{} without {field}", rules.id),
                request: valid(rules, &[KeyframePosition::First], Some(field)).request,
                model: rules.id.clone(),
                field: field.clone(),
                value: "(missing)".into(),
                rule: vec![format!("{} requires {field}", rules.id)],
            });
        }
    }
    cases
}

fn fields_not_taken() -> Vec<Refused> {
    let optional = optional_fields();
    let mut cases = Vec::new();
    for rules in models() {
        for field in optional.iter().filter(|f| !rules.fields.contains(f)) {
            let case = first_frame_only(rules).with(field, rules);
            cases.push(Refused {
                what: format!("{} with {field}", rules.id),
                value: case.body[field].to_string(),
                request: case.request,
                model: rules.id.clone(),
                field: field.clone(),
                rule: vec![format!("{} does not take {field}", rules.id)],
            });
        }
    }
    cases
}

/// Every way of breaking a model's own rules, over the whole catalogue.
fn every_broken_model_rule() -> Vec<Refused> {
    [refused_ratios(), refused_durations(), refused_keyframes(), missing_required(), fields_not_taken()]
        .into_iter()
        .flatten()
        .collect()
}

// ---------------------------------------------------------------------------------- the checks

/// Sends every case to one server, each expected exactly once with exactly its body; returns
/// how many went out.
async fn all_sent_as_built(cases: Vec<Case>) -> usize {
    assert!(!cases.is_empty());
    let server = MockServer::start_async().await;
    let client = client(&server);
    let mut mocks = Vec::with_capacity(cases.len());
    for case in &cases {
        let body = case.body.clone();
        let mock = server
            .mock_async(|when, then| {
                api_request(when, "2024-11-06").method("POST").path(CREATE_PATH).json_body(body);
                then.status(200).json_body(json!({"id": TASK_ID}));
            })
            .await;
        let id = client.create(&case.request).await.unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert_eq!(id, TASK_ID, "{}", case.what);
        mocks.push(mock);
    }
    let mut sent = 0;
    for (mock, case) in mocks.iter().zip(&cases) {
        let calls = mock.calls_async().await;
        assert_eq!(calls, 1, "{} went out as {}", case.what, case.body);
        sent += calls;
    }
    sent
}

/// Sends every case to a server that records everything: each is refused as its case says, and
/// the server sees no request at all.
async fn all_refused_without_sending(cases: Vec<Refused>) {
    assert!(!cases.is_empty());
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;
    let client = client(&server);
    for case in &cases {
        let err = client.create(&case.request).await.expect_err(&case.what);
        assert_refused(&err, case);
    }
    any.assert_calls_async(0).await;
}

#[track_caller]
fn assert_refused(err: &Error, case: &Refused) {
    let Error::InvalidInput { field, value, rule, model } = err else {
        panic!("{}: not InvalidInput: {err:?}", case.what)
    };
    assert_eq!(*field, case.field, "{}: {err}", case.what);
    assert_eq!(model.as_deref(), Some(case.model.as_str()), "{}: {err}", case.what);
    assert_eq!(*value, case.value, "{}: {err}", case.what);
    for part in &case.rule {
        assert!(rule.contains(part.as_str()), "{}: rule {rule:?} should mention {part:?}", case.what);
    }
    let message = err.to_string();
    let named = [&case.field, &case.value, &format!(" for {}", case.model)];
    assert!(named.iter().all(|part| message.contains(part.as_str())), "{}: {message}", case.what);
}

/// A field rule (every model's): `InvalidInput` on `field`, no model named.
#[track_caller]
fn assert_field_rule(err: &Error, field: &str, rule: &str) {
    let Error::InvalidInput { field: f, rule: r, model, .. } = err else { panic!("not InvalidInput: {err:?}") };
    assert_eq!((*f, model.as_deref()), (field, None), "{err}");
    assert!(r.contains(rule), "{err}");
}

// ------------------------------------------------------------------------- accepted and sent

#[tokio::test]
async fn every_ratio_a_model_takes_is_sent() {
    let cases = allowed_ratios();
    let expected: usize = models().iter().map(|m| m.ratios.len()).sum();
    assert_eq!(all_sent_as_built(cases).await, expected);
}

#[tokio::test]
async fn every_duration_a_model_takes_is_sent() {
    let cases = allowed_durations();
    let expected: usize = models().iter().map(|m| m.durations.len()).sum();
    assert_eq!(all_sent_as_built(cases).await, expected);
}

#[tokio::test]
async fn every_keyframe_set_a_model_takes_is_sent() {
    let cases = allowed_keyframes();
    let expected: usize = models().iter().map(|m| m.keyframes.len()).sum();
    assert_eq!(all_sent_as_built(cases).await, expected);
}

#[tokio::test]
async fn every_optional_field_a_model_takes_is_sent() {
    let mut cases = Vec::new();
    for rules in models() {
        // A required field is in every request of its model already.
        for field in optional_fields().iter().filter(|f| rules.fields.contains(f) && !rules.requires.contains(f)) {
            cases.push(first_frame_only(rules).with(field, rules).named(format!("{} with {field}", rules.id)));
        }
    }
    let expected: usize = models().iter().map(|m| m.fields.len() - m.requires.len()).sum();
    assert_eq!(all_sent_as_built(cases).await, expected);
}

#[tokio::test]
async fn a_lone_first_frame_is_sent_as_a_plain_string() {
    let request = ImageToVideo::from_keyframes([(KeyframePosition::First, FIRST)]).model("veo3.1").duration(8);
    let case = Case {
        what: "veo3.1, first frame".into(),
        request,
        body: json!({"promptImage": FIRST, "model": "veo3.1", "duration": 8}),
    };
    assert_eq!(all_sent_as_built(vec![case]).await, 1);
}

#[tokio::test]
async fn first_and_last_frames_are_sent_as_a_keyframe_list() {
    let request = ImageToVideo::new(FIRST).last_frame(LAST).model("veo3.1").ratio(Ratio::W1920H1080).duration(8);
    let body = json!({
        "promptImage": [{"uri": FIRST, "position": "first"}, {"uri": LAST, "position": "last"}],
        "model": "veo3.1", "ratio": "1920:1080", "duration": 8
    });
    assert_eq!(all_sent_as_built(vec![Case { what: "veo3.1, first+last".into(), request, body }]).await, 1);
}

#[tokio::test]
async fn an_unknown_model_is_sent_as_given_with_any_duration_and_spec_ratio() {
    let mut cases = Vec::new();
    for seconds in [3, 13] {
        for r in Ratio::ALL {
            let request = ImageToVideo::new(FIRST).model(UNKNOWN_MODEL).duration(seconds).ratio(r).watermark(true);
            let body = json!({"promptImage": FIRST, "model": UNKNOWN_MODEL, "duration": seconds,
                              "ratio": r.as_str(), "watermark": true});
            cases.push(Case { what: format!("{UNKNOWN_MODEL} for {seconds} s at {r}"), request, body });
        }
    }
    let last_only = ImageToVideo::from_keyframes([(KeyframePosition::Last, LAST)]).model(UNKNOWN_MODEL).audio(false);
    let body = json!({"promptImage": [{"uri": LAST, "position": "last"}], "model": UNKNOWN_MODEL, "audio": false});
    cases.push(Case { what: format!("{UNKNOWN_MODEL} with a last frame alone"), request: last_only, body });
    assert!(Catalogue::builtin().get(UNKNOWN_MODEL).is_none());
    assert_eq!(all_sent_as_built(cases).await, 2 * Ratio::ALL.len() + 1);
}

#[tokio::test]
async fn model_rules_off_sends_what_the_catalogue_refuses() {
    let request = ImageToVideo::new(FIRST).model("veo3").duration(4).ratio(Ratio::W960H960).watermark(true);
    assert!(request.build().is_err(), "the catalogue refuses it");
    let body = json!({"promptImage": FIRST, "model": "veo3", "duration": 4, "ratio": "960:960", "watermark": true});
    let case = Case { what: "veo3 unchecked".into(), request: request.model_rules(false), body };
    assert_eq!(all_sent_as_built(vec![case]).await, 1);
}

// -------------------------------------------------------------------- refused without sending

#[tokio::test]
async fn a_ratio_the_model_does_not_take_is_refused_without_sending() {
    all_refused_without_sending(refused_ratios()).await;
}

#[tokio::test]
async fn a_duration_the_model_does_not_take_is_refused_without_sending() {
    all_refused_without_sending(refused_durations()).await;
}

#[tokio::test]
async fn a_keyframe_set_the_model_does_not_take_is_refused_without_sending() {
    all_refused_without_sending(refused_keyframes()).await;
}

#[tokio::test]
async fn a_missing_required_field_is_refused_without_sending() {
    all_refused_without_sending(missing_required()).await;
}

#[tokio::test]
async fn an_optional_field_the_model_does_not_take_is_refused_without_sending() {
    all_refused_without_sending(fields_not_taken()).await;
}

#[tokio::test]
async fn a_broken_duration_names_value_model_and_rule() {
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;
    let client = client(&server);
    for (model, rule) in [("veo3.1", "must be 4, 6 or 8"), ("gen3a_turbo", "must be 5 or 10"), ("veo3", "must be 8")] {
        let seconds = if model == "gen3a_turbo" { 4 } else { 5 };
        let err = client.create(&ImageToVideo::new(FIRST).model(model).duration(seconds)).await.unwrap_err();
        assert_eq!(err.to_string(), format!("invalid duration {seconds} for {model}: {rule}"));
    }
    let err = client.create(&ImageToVideo::new(FIRST).model("gen4_turbo").duration(11)).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid duration 11 for gen4_turbo: must be 2 to 10");
    any.assert_calls_async(0).await;
}

#[tokio::test]
async fn model_rules_off_still_applies_the_field_rules() {
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;
    let request = ImageToVideo::new(FIRST).model("veo3").duration(4).seed(1_000_000_000).model_rules(false);
    let err = client(&server).create(&request).await.unwrap_err();
    assert_field_rule(&err, "seed", "between 0 and 999999999");
    assert!(err.to_string().contains("1000000000"), "{err}");
    any.assert_calls_async(0).await;
}

// ------------------------------------------------------------- the gateway's table, every model

/// Every catalogue model, then one the catalogue does not know (taking any field).
fn every_model_and_an_unknown_one() -> Vec<(Case, bool, bool)> {
    let mut all: Vec<(Case, bool, bool)> = models()
        .iter()
        .map(|m| {
            let takes = |f: &str| m.fields.iter().any(|x| x == f);
            (first_frame_only(m), takes("seed"), takes("promptText"))
        })
        .collect();
    let unknown = Case {
        what: UNKNOWN_MODEL.into(),
        request: ImageToVideo::new(FIRST).model(UNKNOWN_MODEL),
        body: json!({"promptImage": FIRST, "model": UNKNOWN_MODEL}),
    };
    all.push((unknown, true, true));
    all
}

#[tokio::test]
async fn the_seed_range_applies_to_every_model() {
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;
    let mut sendable = Vec::new();
    for (base, takes_seed, _) in every_model_and_an_unknown_one() {
        for seed in [1_000_000_000, u64::MAX] {
            let err = client(&server).create(&base.request.clone().seed(seed)).await.expect_err(&base.what);
            assert_field_rule(&err, "seed", &format!("between 0 and {SEED_MAX}"));
        }
        if takes_seed {
            for seed in [0, SEED_MAX] {
                let mut case = base.clone().named(format!("{} with seed {seed}", base.what));
                case.request = case.request.seed(seed);
                case.body["seed"] = json!(seed);
                sendable.push(case);
            }
        }
    }
    any.assert_calls_async(0).await;
    let expected = sendable.len();
    assert!(expected >= 2 * models().len(), "every model takes a seed today");
    assert_eq!(all_sent_as_built(sendable).await, expected);
}

#[tokio::test]
async fn the_prompt_length_rule_applies_to_every_model() {
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;
    let too_long = format!("{}🎬", "a".repeat(511)); // 512 characters, 513 UTF-16 units
    let longest = format!("{}🎬", "a".repeat(510)); // 512 UTF-16 units
    let mut sendable = Vec::new();
    for (base, _, takes_prompt) in every_model_and_an_unknown_one() {
        for (text, rule) in [(too_long.as_str(), "got 513"), ("", "must not be empty"), (" \n", "must not be empty")] {
            let err = client(&server).create(&base.request.clone().prompt_text(text)).await.expect_err(&base.what);
            assert_field_rule(&err, "promptText", rule);
        }
        if takes_prompt {
            let mut case = base.clone().named(format!("{} with a 512-unit prompt", base.what));
            case.request = case.request.prompt_text(longest.as_str());
            case.body["promptText"] = json!(longest);
            sendable.push(case);
        }
    }
    any.assert_calls_async(0).await;
    let expected = sendable.len();
    assert!(expected > models().len(), "every model takes a prompt today");
    assert_eq!(all_sent_as_built(sendable).await, expected);
}

// ---------------------------------------------------------------------------------- simulator

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A create call as raw HTTP, as a client that skipped the crate's checks would make it.
async fn raw_create(server: &Simulator, body: &Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}/runwayml/v1/image_to_video", server.base_url()))
        .bearer_auth(server.api_key())
        .header("X-Runway-Version", "2024-11-06")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_simulator_refuses_every_broken_model_rule_with_400_naming_the_field() {
    let server = Simulator::start().await;
    let cases = every_broken_model_rule();
    for rules in models() {
        assert!(cases.iter().any(|c| c.model == rules.id), "{} has a rule to break", rules.id);
    }
    for case in &cases {
        // The body exactly as the client would send it had it not checked the model's rules.
        let built = case.request.clone().model_rules(false).build().unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let body = serde_json::to_value(built).unwrap();
        let (status, answer) = raw_create(&server, &body).await;
        assert_eq!(status, 400, "{}: {answer}", case.what);
        let text = answer["error"].as_str().unwrap_or_else(|| panic!("{}: {answer}", case.what));
        assert!(text.contains(&case.field) && text.contains(&case.model), "{}: {text}", case.what);
    }
    assert_eq!(server.tasks_created(), 0);
}

#[tokio::test]
async fn the_simulator_accepts_every_body_the_client_sends_for_each_model() {
    let server = Simulator::start().await;
    let cases: Vec<Case> = [allowed_ratios(), allowed_durations(), allowed_keyframes()].into_iter().flatten().collect();
    for case in &cases {
        let (status, answer) = raw_create(&server, &case.body).await;
        assert_eq!(status, 200, "{}: {answer}", case.what);
    }
    assert_eq!(server.tasks_created(), cases.len());
}

// ------------------------------------------------------------------- the catalogue is the spec

const SPEC: &str = include_str!("../openapi/cometapi-runway.yaml");
const X_MODELS_LINE: &str = "      x-models:\n";

/// `x-models` of a spec text, as JSON.
fn x_models(spec_text: &str) -> Value {
    let spec: Value = serde_norway::from_str(spec_text).expect("the spec is valid YAML");
    let x_models = spec["components"]["schemas"]["ImageToVideoRequest"]["x-models"].clone();
    assert!(x_models.is_object(), "no x-models on ImageToVideoRequest");
    x_models
}

/// The spec with `entry` (YAML, indented as a model of `x-models`) added to the catalogue.
fn spec_with_model(entry: &str) -> String {
    assert_eq!(SPEC.matches(X_MODELS_LINE).count(), 1, "the spec has one x-models block");
    SPEC.replacen(X_MODELS_LINE, &format!("{X_MODELS_LINE}{entry}"), 1)
}

fn ids(catalogue: &Catalogue) -> Vec<&str> {
    let mut ids: Vec<&str> = catalogue.models().iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

const GEN9_TEST: &str = "        gen9_test:
          summary: a model added to the spec by a test
          ratios: ['960:960']
          durations: [3]
          keyframes: [[first]]
          fields: [duration, ratio]
          requires: [duration]
";

#[test]
fn a_model_added_to_the_spec_is_validated_by_its_rules_with_no_rust_touched() {
    let edited = Catalogue::from_x_models(&x_models(&spec_with_model(GEN9_TEST))).unwrap();
    let mut expected = ids(Catalogue::builtin());
    expected.push("gen9_test");
    expected.sort_unstable();
    assert_eq!(ids(&edited), expected, "the new model joins the others");

    let request = ImageToVideo::new(FIRST).model("gen9_test");
    let err = request.clone().duration(5).build_with(&edited).unwrap_err();
    assert_eq!(err.to_string(), "invalid duration 5 for gen9_test: must be 3");
    let err = request.build_with(&edited).unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field: "duration", model: Some(m), .. } if m == "gen9_test"), "{err}");
    assert!(err.to_string().contains("gen9_test requires duration"), "{err}");
    let err = request.clone().duration(3).ratio(Ratio::W1280H720).build_with(&edited).unwrap_err();
    assert!(err.to_string().contains("must be one of 960:960"), "{err}");

    let body = request.clone().duration(3).ratio(Ratio::W960H960).build_with(&edited).unwrap();
    assert_eq!(
        serde_json::to_value(body).unwrap(),
        json!({"promptImage": FIRST, "model": "gen9_test", "duration": 3, "ratio": "960:960"})
    );
}

#[test]
fn a_model_only_in_an_edited_spec_is_unknown_to_the_builtin_catalogue() {
    assert!(Catalogue::builtin().get("gen9_test").is_none());
    let request = ImageToVideo::new(FIRST).model("gen9_test").duration(5);
    assert!(request.build().is_ok(), "sent as given");
    assert!(ImageToVideo::new(FIRST).model("gen9_test").build().is_ok());
}

#[test]
fn a_broken_catalogue_entry_is_refused_naming_the_model() {
    for (broken, named) in [
        (GEN9_TEST.replace("'960:960'", "'16:9'"), "16:9"),
        (GEN9_TEST.replace("fields: [duration, ratio]", "fields: [duration, ratio, loop]"), "loop"),
        (GEN9_TEST.replace("requires: [duration]", "requires: [duration, promptText]"), "promptText"),
        (GEN9_TEST.replace("durations: [3]", "durations: [3]\n          maxDuration: 12"), "maxDuration"),
    ] {
        let err = Catalogue::from_x_models(&x_models(&spec_with_model(&broken))).unwrap_err();
        let Error::InvalidInput { field, .. } = &err else { panic!("not InvalidInput: {err:?}") };
        assert_eq!(*field, "x-models", "{err}");
        let message = err.to_string();
        assert!(message.contains("gen9_test") && message.contains(named), "{named}: {message}");
    }
}
