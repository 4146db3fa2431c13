//! The spec and the code generated from it agree, and so do the crate's hand-written rules:
//! a change to the spec that the code does not follow fails here, not in production.

mod common;
mod support;

use std::collections::BTreeSet;

use cometapi_runway::{types, Model, Ratio, DEFAULT_RUNWAY_VERSION, PROMPT_TEXT_MAX_UTF16, SEED_MAX};
use serde_json::{json, Value};

/// The request schema as written in the spec.
fn spec_request(spec: &Value) -> &Value {
    &spec["components"]["schemas"]["ImageToVideoRequest"]
}

/// A schema from the spec's components.
fn spec_schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "the spec has no schema {name}");
    schema
}

/// The schema schemars derives for the generated request type.
fn derived_request() -> Value {
    serde_json::to_value(schemars::schema_for!(types::ImageToVideoRequest)).unwrap()
}

/// A property of the derived schema with `$ref`s and nullable `anyOf`s followed to the definition.
fn derived_property<'a>(root: &'a Value, name: &str) -> &'a Value {
    let mut schema = &root["properties"][name];
    assert!(schema.is_object(), "the derived schema has no property {name}");
    loop {
        if let Some(target) = schema["$ref"].as_str() {
            let name = target.strip_prefix("#/definitions/").expect("a local definition");
            schema = &root["definitions"][name];
        } else if let Some(branches) = schema["anyOf"].as_array() {
            let not_null: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
            assert_eq!(not_null.len(), 1, "{name}: one non-null branch");
            schema = not_null[0];
        } else {
            return schema;
        }
    }
}

fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().expect("an object").keys().cloned().collect()
}

fn strings(array: &Value) -> Vec<String> {
    array.as_array().expect("an array").iter().map(|v| v.as_str().expect("a string").to_string()).collect()
}

#[test]
fn derived_schema_has_the_specs_properties_and_required_fields() {
    let spec = common::spec();
    let derived = derived_request();

    assert_eq!(keys(&derived["properties"]), keys(&spec_request(&spec)["properties"]));
    let required: BTreeSet<String> = strings(&derived["required"]).into_iter().collect();
    let spec_required: BTreeSet<String> = strings(&spec_request(&spec)["required"]).into_iter().collect();
    assert_eq!(required, spec_required);
    assert_eq!(spec_required, BTreeSet::from(["model".to_string(), "promptImage".to_string()]));
}

#[test]
fn derived_schema_carries_the_specs_ratio_values() {
    let spec = common::spec();
    let derived = derived_request();

    let ratio = derived_property(&derived, "ratio");
    assert_eq!(strings(&ratio["enum"]), strings(&spec_schema(&spec, "Ratio")["enum"]));
    assert_eq!(strings(&ratio["enum"]).len(), 10);
}

#[test]
fn ratio_variant_names_are_derived_from_the_specs_values() {
    let spec = common::spec();
    let values = strings(&spec_schema(&spec, "Ratio")["enum"]);
    assert_eq!(Ratio::ALL.len(), values.len());
    for (ratio, value) in Ratio::ALL.iter().zip(&values) {
        let (w, h) = value.split_once(':').unwrap();
        assert_eq!(format!("{ratio:?}"), format!("W{w}H{h}"));
        assert_eq!(ratio.as_str(), value);
        assert_eq!(serde_json::to_value(ratio).unwrap(), json!(value));
    }
    assert_eq!(Ratio::W1920H1080.as_str(), "1920:1080");
}

#[test]
fn derived_schema_types_follow_the_spec() {
    let spec = common::spec();
    let derived = derived_request();
    let spec_properties = &spec_request(&spec)["properties"];

    for (name, want) in [
        ("model", "string"),
        ("promptText", "string"),
        ("seed", "integer"),
        ("duration", "integer"),
        ("audio", "boolean"),
    ] {
        assert_eq!(spec_properties[name]["type"], want, "spec {name}");
        let derived_type = &derived_property(&derived, name)["type"];
        let types: Vec<&str> = match derived_type {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
            other => panic!("{name}: {other}"),
        };
        assert_eq!(types, [want], "derived {name}");
    }
    // No default on `watermark`: it is only sent when asked for.
    assert_eq!(spec_properties["watermark"]["default"], Value::Null);
    assert_eq!(derived_property(&derived, "watermark")["default"], Value::Null);
}

#[test]
fn generated_types_enforce_the_specs_string_bounds() {
    // The derived schema does not carry minLength/maxLength (typify checks them in the
    // newtypes' constructors instead), so check the constructors.
    let spec = common::spec();
    let prompt_text = &spec_request(&spec)["properties"]["promptText"];
    let max = prompt_text["maxLength"].as_u64().unwrap() as usize;
    let min = prompt_text["minLength"].as_u64().unwrap() as usize;

    assert!("a".repeat(max).parse::<types::ImageToVideoRequestPromptText>().is_ok());
    assert!("a".repeat(max + 1).parse::<types::ImageToVideoRequestPromptText>().is_err());
    assert_eq!(min, 1);
    assert!("".parse::<types::ImageToVideoRequestPromptText>().is_err());
    assert!("".parse::<types::PromptImageUri>().is_err());
    assert!("".parse::<types::PromptImageKeyframeUri>().is_err());
    assert!("".parse::<types::ImageToVideoRequestModel>().is_err());
}

#[test]
fn the_builtin_catalogue_is_the_specs_x_models() {
    let spec = common::spec();
    let x_models = &spec_request(&spec)["x-models"];
    let from_spec = cometapi_runway::Catalogue::from_x_models(x_models).unwrap();

    // The same entries; `from_x_models` reads a JSON map, whose keys come sorted.
    let mut builtin = cometapi_runway::Catalogue::builtin().models().to_vec();
    builtin.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(from_spec.models(), builtin.as_slice());
    let ids: BTreeSet<&str> = builtin.iter().map(|m| m.id.as_str()).collect();
    let spec_ids: BTreeSet<&str> = x_models.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(ids, spec_ids);
}

#[test]
fn generated_duration_is_a_whole_number_of_seconds() {
    let spec = common::spec();
    let duration = &spec_request(&spec)["properties"]["duration"];
    assert_eq!(duration["type"], "integer");
    assert_eq!(duration["minimum"], 1);
    let body = |d: i64| json!({"promptImage": "https://example.com/a.jpg", "model": "m", "duration": d});
    assert!(serde_json::from_value::<types::ImageToVideoRequest>(body(7)).is_ok());
    assert!(serde_json::from_value::<types::ImageToVideoRequest>(body(0)).is_err());
}

#[test]
fn crate_limits_equal_the_specs_bounds() {
    let spec = common::spec();
    let properties = &spec_request(&spec)["properties"];

    assert_eq!(Some(SEED_MAX), properties["seed"]["maximum"].as_u64());
    assert_eq!(Some(0), properties["seed"]["minimum"].as_u64());
    assert_eq!(Some(PROMPT_TEXT_MAX_UTF16 as u64), properties["promptText"]["maxLength"].as_u64());
}

#[test]
fn ratio_all_equals_the_specs_enum_in_order() {
    let spec = common::spec();
    let all: Vec<String> = Ratio::ALL.iter().map(ToString::to_string).collect();

    assert_eq!(all, strings(&spec_schema(&spec, "Ratio")["enum"]));
    for r in Ratio::ALL {
        assert_eq!(r.to_string(), format!("{}:{}", r.width(), r.height()));
    }
}

#[test]
fn crate_defaults_equal_the_specs_defaults() {
    let spec = common::spec();
    let properties = &spec_request(&spec)["properties"];

    assert_eq!(Some(Model::default().as_str()), properties["model"]["default"].as_str());
    assert_eq!(types::ImageToVideoRequestModel::default().as_str(), Model::default().as_str());
    assert_eq!(Some(Ratio::ALL[0].to_string().as_str()), spec_schema(&spec, "Ratio")["default"].as_str());
    // The spec's `info.version` is the Runway API version it describes.
    assert_eq!(Some(DEFAULT_RUNWAY_VERSION), spec["info"]["version"].as_str());
}

#[test]
fn spec_requires_the_runway_version_header_on_create_only() {
    let spec = common::spec();
    let parameters = &spec["components"]["parameters"];

    assert_eq!(parameters["RunwayVersionRequired"]["name"], "X-Runway-Version");
    assert_eq!(parameters["RunwayVersionRequired"]["required"], true);
    assert_eq!(parameters["RunwayVersionOptional"]["required"], false);
    let create = &spec["paths"]["/runwayml/v1/image_to_video"]["post"]["parameters"][0]["$ref"];
    assert_eq!(create, "#/components/parameters/RunwayVersionRequired");
}

/// `Client::get_task` builds its request by hand (see `PollRoute` in `src/client.rs`); what the
/// server receives must be, byte for byte, what the generated `get_task` builder sends for the
/// spec's operation: method, path with the id encoded the same way, every header in order.
#[tokio::test]
async fn the_hand_built_poll_is_the_generated_request() {
    let server = support::Server::start(|base| support::Routes {
        poll: vec![support::Reply::task("t1", "RUNNING")],
        ..support::Routes::happy(base)
    })
    .await;
    let client = cometapi_runway::Client::builder().api_key("sk-agree").base_url(server.base_url()).build().unwrap();
    let ids = ["d0658ae1-5e2a-4a53-9a5c-1f1d8a0c2b7e", "with space", "ünïcödé", "50%", "q\"<>`{}|^", "a;b:c@d+e=f"];
    for id in ids {
        client.get_task(id).await.unwrap();
        client.raw().get_task().id(id).x_runway_version(client.runway_version()).send().await.unwrap();
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 2 * ids.len());
    for (pair, id) in requests.chunks(2).zip(ids) {
        let (hand, generated) = (&pair[0], &pair[1]);
        assert_eq!((&hand.method, &hand.path), (&generated.method, &generated.path), "id {id:?}");
        assert_eq!(hand.headers, generated.headers, "id {id:?}");
        assert!(hand.path.starts_with(support::POLL_PREFIX), "{}", hand.path);
    }
    // Checked against something: the key and the version are there, progenitor's `api-version` is not.
    let first = &requests[0];
    assert_eq!(first.header("authorization"), Some("Bearer sk-agree"));
    assert_eq!(first.header("x-runway-version"), Some(DEFAULT_RUNWAY_VERSION));
    assert_eq!(first.header("accept"), Some("application/json"));
    assert_eq!(first.header("api-version"), None);
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/runwayml/v1/tasks/d0658ae1-5e2a-4a53-9a5c-1f1d8a0c2b7e");
}
