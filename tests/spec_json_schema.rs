//! The JSON Schema export (`cometapi_runway::schema`, CLI `schema`) against a standard
//! validator, and every example of the spec against its own schema: the spec is a product other
//! tools read, so its limits must survive conversion and its examples must be true.

use cometapi_runway::schema;
use serde_json::{json, Value};

#[path = "../build/json_schema.rs"]
#[allow(dead_code)]
mod json_schema;

const SPEC: &str = include_str!("../openapi/cometapi-runway.yaml");

fn spec() -> Value {
    serde_norway::from_str(SPEC).expect("the spec is YAML")
}

fn request_validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema::request()).expect("the export compiles as JSON Schema")
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

const IMAGE: &str = "https://example.com/cat.jpg";

#[test]
fn the_exports_are_valid_draft_2020_12_schemas() {
    for doc in [schema::request(), schema::components()] {
        assert_eq!(doc["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert!(jsonschema::meta::is_valid(&doc), "{doc}");
    }
}

#[test]
fn the_request_schema_rejects_a_negative_seed() {
    let v = request_validator();
    assert!(v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "seed": 0})));
    assert!(!v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "seed": -1})));
}

#[test]
fn the_request_schema_rejects_a_prompt_of_513_units() {
    let v = request_validator();
    let at_limit = "a".repeat(cometapi_runway::PROMPT_TEXT_MAX_UTF16);
    let over = "a".repeat(cometapi_runway::PROMPT_TEXT_MAX_UTF16 + 1);
    assert!(v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": at_limit})));
    assert!(!v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": over})));
    assert!(!v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "promptText": ""})));
}

#[test]
fn the_request_schema_rejects_an_empty_prompt_image() {
    let v = request_validator();
    assert!(!v.is_valid(&json!({"promptImage": "", "model": "gen3a_turbo"})));
    assert!(!v.is_valid(&json!({"model": "gen3a_turbo"})));
    assert!(!v.is_valid(&json!({"promptImage": null, "model": "gen3a_turbo"})));
}

#[test]
fn the_request_schema_rejects_an_unknown_ratio() {
    let v = request_validator();
    assert!(v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "ratio": "1280:720"})));
    assert!(!v.is_valid(&json!({"promptImage": IMAGE, "model": "gen3a_turbo", "ratio": "1:1"})));
}

#[test]
fn the_request_schema_carries_each_known_model_rules() {
    let v = request_validator();
    let ok = |body: Value| assert_eq!(errors(&v, &body), Vec::<String>::new(), "{body}");
    let refused = |body: Value| assert!(!v.is_valid(&body), "accepted {body}");
    let first = |uri: &str| json!([{"uri": uri, "position": "first"}]);
    let both = json!([{"uri": IMAGE, "position": "last"}, {"uri": IMAGE, "position": "first"}]);

    ok(json!({"promptImage": IMAGE, "model": "gen4_turbo", "ratio": "1584:672", "duration": 7}));
    refused(json!({"promptImage": IMAGE, "model": "gen4_turbo", "ratio": "1280:768"}));
    refused(json!({"promptImage": IMAGE, "model": "gen4_turbo", "duration": 11}));
    refused(json!({"promptImage": IMAGE, "model": "gen4_turbo", "audio": true}));
    refused(json!({"promptImage": both, "model": "gen4_turbo"}));
    ok(json!({"promptImage": first(IMAGE), "model": "gen4_turbo"}));
    refused(json!({"promptImage": IMAGE, "model": "gen4.5", "duration": 5}));
    ok(json!({"promptImage": IMAGE, "model": "gen4.5", "duration": 5, "promptText": "a cat"}));
    ok(json!({"promptImage": both, "model": "veo3.1", "duration": 8, "audio": false}));
    refused(json!({"promptImage": [{"uri": IMAGE, "position": "last"}], "model": "veo3.1"}));
    refused(json!({"promptImage": IMAGE, "model": "veo3", "duration": 4}));
    // A model the catalogue does not know: the field rules only.
    ok(json!({"promptImage": IMAGE, "model": "gen9_turbo", "ratio": "1080:1920", "duration": 3, "audio": true}));
    refused(json!({"promptImage": IMAGE, "model": "gen9_turbo", "seed": -1}));
}

#[test]
fn the_request_schema_agrees_with_the_crate_validator() {
    let v = request_validator();
    let catalogue = cometapi_runway::Catalogue::builtin();
    let images = [
        json!(IMAGE),
        json!([{"uri": IMAGE, "position": "first"}]),
        json!([{"uri": IMAGE, "position": "last"}]),
        json!([{"uri": IMAGE, "position": "first"}, {"uri": IMAGE, "position": "last"}]),
    ];
    let extras = [
        json!({}),
        json!({"promptText": "a cat"}),
        json!({"audio": true}),
        json!({"negativePrompt": "rain"}),
        json!({"watermark": true}),
        json!({"contentModeration": {"publicFigureThreshold": "low"}}),
        json!({"promptText": "a cat", "duration": 5}),
    ];
    let mut models: Vec<String> = catalogue.models().iter().map(|m| m.id.clone()).collect();
    models.push("not_in_the_catalogue".into());
    let ratios: Vec<Value> = cometapi_runway::Ratio::ALL.iter().map(|r| json!(r.to_string())).collect();
    let mut compared = 0;
    for model in &models {
        for image in &images {
            for (i, ratio) in ratios.iter().enumerate() {
                for duration in [2, 4, 5, 8, 10] {
                    for extra in &extras {
                        let mut body = json!({"promptImage": image, "model": model});
                        if i % 2 == 0 || model == "gen4.5" {
                            body["ratio"] = ratio.clone();
                            body["duration"] = json!(duration);
                        }
                        for (k, val) in extra.as_object().unwrap() {
                            body[k] = val.clone();
                        }
                        let crate_says = catalogue.check(&body, true).is_ok();
                        assert_eq!(v.is_valid(&body), crate_says, "{body}: the crate says {crate_says}");
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 1000, "{compared}");
}

#[test]
fn the_request_schema_accepts_the_spec_request_examples() {
    let v = request_validator();
    let examples = media_examples(&spec())
        .into_iter()
        .filter(|e| e.schema == json!({"$ref": "#/components/schemas/ImageToVideoRequest"}))
        .collect::<Vec<_>>();
    assert!(!examples.is_empty(), "the create route has examples");
    for example in examples {
        assert_eq!(errors(&v, &example.value), Vec::<String>::new(), "{}", example.at);
    }
}

#[test]
fn every_example_in_the_spec_validates_against_its_schema() {
    let spec = spec();
    let defs = json_schema::components(&spec);
    let against = |schema: &Value| {
        let doc = json!({"$schema": json_schema::DIALECT, "$defs": defs, "allOf": [schema]});
        jsonschema::validator_for(&doc).unwrap_or_else(|e| panic!("{e}: {schema}"))
    };
    let mut checked = 0;
    // Media-type examples: request bodies and responses, errors included.
    for example in media_examples(&spec) {
        let v = against(&json_schema::convert(&example.schema));
        assert_eq!(errors(&v, &example.value), Vec::<String>::new(), "{}", example.at);
        checked += 1;
    }
    // Schema-level `example`s, wherever they sit inside the component schemas.
    let mut found = Vec::new();
    schema_examples(&Value::Object(defs.clone()), "#/$defs", &mut found);
    for (at, subschema, example) in found {
        let v = against(&subschema);
        assert_eq!(errors(&v, &example), Vec::<String>::new(), "{at}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} examples found");
}

#[test]
fn null_data_is_valid_where_the_gateway_sends_it() {
    let components = schema::components();
    let check = |name: &str, instance: Value| {
        let doc =
            json!({"$schema": json_schema::DIALECT, "$defs": components["$defs"], "$ref": format!("#/$defs/{name}")});
        let v = jsonschema::validator_for(&doc).unwrap();
        assert_eq!(errors(&v, &instance), Vec::<String>::new(), "{name}: {instance}");
    };
    check("CometEnvelope", json!({"code": "task_not_exist", "message": "task_not_exist", "data": null}));
    check("GatewayTask", json!({"task_id": "t", "status": "QUEUED", "data": null}));
}

struct MediaExample {
    at: String,
    schema: Value,
    value: Value,
}

/// Every `example` / `examples.*.value` beside a media type's schema, in paths and in shared
/// responses and request bodies.
fn media_examples(spec: &Value) -> Vec<MediaExample> {
    let mut out = Vec::new();
    let mut visit = |at: String, holder: &Value| {
        let Some(content) = holder.get("content").and_then(Value::as_object) else { return };
        for (media_type, media) in content {
            let Some(schema) = media.get("schema") else { continue };
            if let Some(value) = media.get("example") {
                out.push(MediaExample {
                    at: format!("{at} {media_type}"),
                    schema: schema.clone(),
                    value: value.clone(),
                });
            }
            for (name, example) in media.get("examples").and_then(Value::as_object).into_iter().flatten() {
                if let Some(value) = example.get("value") {
                    let at = format!("{at} {media_type} example {name}");
                    out.push(MediaExample { at, schema: schema.clone(), value: value.clone() });
                }
            }
        }
    };
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if let Some(body) = operation.get("requestBody") {
                visit(format!("{method} {path} request"), body);
            }
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                visit(format!("{method} {path} {status}"), response);
            }
        }
    }
    for section in ["responses", "requestBodies"] {
        for (name, holder) in spec["components"][section].as_object().into_iter().flatten() {
            visit(format!("components.{section}.{name}"), holder);
        }
    }
    out
}

/// `(where, schema, example)` for every `examples` entry of a converted schema tree.
fn schema_examples(node: &Value, at: &str, out: &mut Vec<(String, Value, Value)>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(examples)) = map.get("examples") {
                if map.contains_key("type") || map.contains_key("$ref") || map.contains_key("anyOf") {
                    for example in examples {
                        out.push((at.to_string(), node.clone(), example.clone()));
                    }
                }
            }
            for (key, value) in map {
                if key != "examples" && key != "enum" && key != "default" {
                    schema_examples(value, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                schema_examples(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}
