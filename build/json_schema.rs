//! The spec's component schemas as standard JSON Schema (draft 2020-12), for `schema` and for
//! anyone validating requests with tools nobody here wrote.
//!
//! OpenAPI 3.0's schema dialect is close to JSON Schema but not the same; this is the whole
//! difference, translated keyword by keyword, so every limit and enum of the spec survives:
//! - `$ref: '#/components/schemas/X'` becomes `$ref: '#/$defs/X'`;
//! - `nullable: true` becomes a union with `{"type": "null"}` (OpenAPI 3.0.3 lets `nullable`
//!   act only beside `type`; the union says the same for `allOf`/`oneOf` wrappers too);
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric form;
//! - `example` becomes `examples: [..]`; `discriminator`, `xml` and `externalDocs` (no meaning
//!   in JSON Schema) are dropped. Everything else (`x-` extensions included) is kept as is.

use serde_json::{json, Map, Value};

pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Every schema under `components.schemas`, converted, keyed by name.
pub fn components(spec: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(schemas) = spec.pointer("/components/schemas").and_then(Value::as_object) {
        for (name, schema) in schemas {
            out.insert(name.clone(), convert(schema));
        }
    }
    out
}

/// The schema `name` as a standalone document: the converted schema at the root, every schema
/// it reaches under `$defs`.
pub fn standalone(name: &str, defs: &Map<String, Value>) -> Option<Value> {
    let root = defs.get(name)?.clone();
    let mut reached = Map::new();
    let mut queue = Vec::new();
    refs(&root, &mut queue);
    while let Some(next) = queue.pop() {
        if reached.contains_key(&next) {
            continue;
        }
        if let Some(def) = defs.get(&next) {
            refs(def, &mut queue);
            reached.insert(next, def.clone());
        }
    }
    let mut doc = Map::new();
    doc.insert("$schema".into(), json!(DIALECT));
    doc.insert("title".into(), json!(name));
    match root {
        Value::Object(fields) => doc.extend(fields),
        other => {
            doc.insert("allOf".into(), json!([other]));
        }
    }
    if !reached.is_empty() {
        doc.insert("$defs".into(), Value::Object(reached));
    }
    Some(Value::Object(doc))
}

/// Names of the `$defs` a converted schema refers to.
fn refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            out.push(name.to_string());
                        }
                    }
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// One OpenAPI 3.0 schema object as JSON Schema 2020-12.
pub fn convert(schema: &Value) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    let mut nullable = false;
    for (key, value) in map {
        match key.as_str() {
            "$ref" => {
                let r = value.as_str().unwrap_or_default();
                let r = match r.strip_prefix("#/components/schemas/") {
                    Some(name) => format!("#/$defs/{name}"),
                    None => r.to_string(),
                };
                out.insert(key.clone(), Value::String(r));
            }
            "nullable" => nullable = value.as_bool().unwrap_or(false),
            "example" => {
                out.insert("examples".into(), json!([value]));
            }
            "discriminator" | "xml" | "externalDocs" => {}
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), convert(v))).collect::<Map<_, _>>())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "not" => {
                out.insert(key.clone(), convert(value));
            }
            "additionalProperties" => {
                let converted = if value.is_object() { convert(value) } else { value.clone() };
                out.insert(key.clone(), converted);
            }
            "allOf" | "oneOf" | "anyOf" => {
                let items = value.as_array().map(|a| a.iter().map(convert).collect()).unwrap_or_default();
                out.insert(key.clone(), Value::Array(items));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if let Some(Value::Bool(exclusive)) = out.get(flag).cloned() {
            out.remove(flag);
            if exclusive {
                if let Some(limit) = out.remove(bound) {
                    out.insert(flag.into(), limit);
                }
            }
        }
    }
    if !nullable {
        return Value::Object(out);
    }
    // A plain typed schema takes `null` in its type list (and enum); anything composed or
    // referenced becomes a union, so `null` is valid whatever the other branch says.
    let composed = ["$ref", "allOf", "oneOf", "anyOf", "not"].iter().any(|k| out.contains_key(*k));
    match out.get("type").cloned() {
        Some(Value::String(t)) if !composed => {
            out.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                if !values.contains(&Value::Null) {
                    values.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        _ => {
            let description = out.remove("description");
            let mut union = Map::new();
            if let Some(d) = description {
                union.insert("description".into(), d);
            }
            union.insert("anyOf".into(), json!([{"type": "null"}, Value::Object(out)]));
            Value::Object(union)
        }
    }
}

/// The request's `x-models` catalogue as standard JSON Schema: one `if model is X then ...` per
/// known model, with the same meaning as the crate's validator (src/catalogue.rs): its ratios
/// and durations, its required fields, no field beyond `promptImage`, `model` and the ones it
/// takes, and `promptImage` as one of its keyframe sets (a plain string counts as `[first]`;
/// order within a set does not matter). A model not listed gets the field rules only.
pub fn model_conditionals(x_models: &Value) -> Vec<Value> {
    let Some(models) = x_models.as_object() else { return Vec::new() };
    let strings = |v: &Value| -> Vec<Value> { v.as_array().cloned().unwrap_or_default() };
    let mut out = Vec::new();
    for (id, rules) in models {
        let mut then = Map::new();
        let mut properties = Map::new();
        if let Some(ratios) = rules.get("ratios") {
            properties.insert("ratio".into(), json!({"enum": strings(ratios)}));
        }
        if let Some(durations) = rules.get("durations") {
            properties.insert("duration".into(), json!({"enum": strings(durations)}));
        }
        let mut shapes = Vec::new();
        for set in rules.get("keyframes").and_then(Value::as_array).into_iter().flatten() {
            let positions = strings(set);
            if positions == [json!("first")] {
                shapes.push(json!({"type": "string"}));
            }
            let contains: Vec<Value> = positions
                .iter()
                .map(|p| json!({"contains": {"type": "object", "required": ["position"], "properties": {"position": {"const": p}}}}))
                .collect();
            shapes.push(json!({
                "type": "array",
                "minItems": positions.len(),
                "maxItems": positions.len(),
                "items": {"properties": {"position": {"enum": positions}}},
                "allOf": contains,
            }));
        }
        if !shapes.is_empty() {
            properties.insert("promptImage".into(), json!({"anyOf": shapes}));
        }
        then.insert("properties".into(), Value::Object(properties));
        if let Some(requires) = rules.get("requires").filter(|r| r.as_array().is_some_and(|a| !a.is_empty())) {
            then.insert("required".into(), requires.clone());
        }
        if let Some(fields) = rules.get("fields") {
            let mut names = vec![json!("promptImage"), json!("model")];
            for name in strings(fields).into_iter().chain(strings(rules.get("requires").unwrap_or(&Value::Null))) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            then.insert("propertyNames".into(), json!({"enum": names}));
        }
        let mut rule = Map::new();
        if let Some(summary) = rules.get("summary") {
            rule.insert("description".into(), summary.clone());
        }
        rule.insert("if".into(), json!({"required": ["model"], "properties": {"model": {"const": id}}}));
        rule.insert("then".into(), Value::Object(then));
        out.push(Value::Object(rule));
    }
    out
}
