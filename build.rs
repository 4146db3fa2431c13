//! Generates the typed CometAPI client from `openapi/cometapi-runway.yaml` into `OUT_DIR`, and
//! from the same file the pieces the thin layer is driven by:
//!
//! - `catalogue.json`: the model catalogue (`x-models` on `ImageToVideoRequest`), checked here;
//! - `ratio.rs`: the public `Ratio` enum, one readable variant per value of the spec's `Ratio`
//!   enum (`1280:720` becomes `W1280H720`), which the generated client uses in place of its own;
//! - `request_fields.rs`: the request's property names, so errors can name any field.
//!
//! Nothing generated is committed: change the spec and rebuild. A spec that does not parse, a
//! catalogue that breaks its own rules, or a spec progenitor cannot turn into code fails the build
//! with a message naming the file.

use std::{env, fs, path::Path, process};

#[path = "build/json_schema.rs"]
mod json_schema;
#[path = "src/model_rules.rs"]
#[allow(dead_code)]
mod model_rules;

use model_rules::ModelRules;

const SPEC: &str = "openapi/cometapi-runway.yaml";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/model_rules.rs");
    println!("cargo:rerun-if-changed=build/json_schema.rs");

    if let Err(message) = generate() {
        // `cargo:warning` shows in every cargo front-end; the exit fails the build.
        for line in message.lines() {
            println!("cargo:warning={line}");
        }
        eprintln!("{message}");
        process::exit(1);
    }
}

fn generate() -> Result<(), String> {
    let text = fs::read_to_string(SPEC).map_err(|e| format!("{SPEC}: cannot read: {e}"))?;
    let mut value: serde_json::Value =
        serde_norway::from_str(&text).map_err(|e| format!("{SPEC}: not valid YAML: {e}"))?;
    let raw: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| format!("{SPEC}: {e}"))?;
    let out_dir = env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    let out = Path::new(&out_dir);
    write_json_schemas(&value, out)?;
    error_bodies_as_bytes(&mut value);
    null_unions_as_options(&mut value);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(value).map_err(|e| format!("{SPEC}: not a valid OpenAPI 3.0 document: {e}"))?;
    let write = |name: &str, contents: &str| {
        fs::write(out.join(name), contents).map_err(|e| format!("{}: cannot write: {e}", out.join(name).display()))
    };

    let schemas = &raw["components"]["schemas"];
    let ratios = string_list(&schemas["Ratio"]["enum"]).ok_or(format!("{SPEC}: Ratio must be an enum of strings"))?;
    let request = &schemas["ImageToVideoRequest"];
    let properties: Vec<String> = request["properties"]
        .as_mapping()
        .ok_or(format!("{SPEC}: ImageToVideoRequest has no properties"))?
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();

    let catalogue = catalogue(&request["x-models"], &ratios, &properties)?;
    write("catalogue.json", &serde_json::to_string(&catalogue).map_err(|e| e.to_string())?)?;
    write("ratio.rs", &ratio_enum(&ratios)?)?;
    write("request_fields.rs", &format!("pub(crate) const REQUEST_FIELDS: &[&str] = &{properties:?};\n"))?;

    let mut settings = progenitor_impl::GenerationSettings::new();
    settings
        .with_interface(progenitor_impl::InterfaceStyle::Builder)
        .with_tag(progenitor_impl::TagStyle::Merged)
        // Configuration the hooks need (key, retry policy, request limit) travels with the
        // generated client; see src/hooks.rs.
        .with_inner_type(quote_path("crate::hooks::Inner"))
        // Our `ClientHooks` impl (src/hooks.rs) is required, not optional.
        .with_hooks(progenitor_impl::HooksMode::Expected)
        // The ratio enum with readable variants generated below stands in for typify's own.
        .with_replacement(
            "Ratio",
            "crate::Ratio",
            [progenitor_impl::TypeImpl::Display, progenitor_impl::TypeImpl::FromStr].into_iter(),
        )
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq");

    let mut generator = progenitor_impl::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("{SPEC}: progenitor cannot generate a client from it: {e}"))?;
    let file =
        syn::parse2(tokens).map_err(|e| format!("{SPEC}: generated code does not parse (progenitor bug?): {e}"))?;
    write("cometapi_runway_generated.rs", &prettyplease::unparse(&file))
}

/// `x-models`, in the spec's order, each entry checked against the spec's ratios and properties.
fn catalogue(value: &serde_norway::Value, ratios: &[String], properties: &[String]) -> Result<Vec<ModelRules>, String> {
    let map = value.as_mapping().ok_or(format!("{SPEC}: ImageToVideoRequest needs an x-models map"))?;
    let mut models = Vec::new();
    for (id, rules) in map {
        let id = id.as_str().ok_or(format!("{SPEC}: x-models keys are model ids"))?;
        let mut rules: ModelRules =
            serde_norway::from_value(rules.clone()).map_err(|e| format!("{SPEC}: x-models.{id}: {e}"))?;
        rules.id = id.to_string();
        rules.check(ratios, properties).map_err(|e| format!("{SPEC}: {e}"))?;
        models.push(rules);
    }
    Ok(models)
}

/// The public ratio enum: `W{width}H{height}` per spec value, in the spec's order.
fn ratio_enum(values: &[String]) -> Result<String, String> {
    let mut variants = String::new();
    let mut all = String::new();
    let mut dims = String::new();
    let mut strs = String::new();
    for value in values {
        let (w, h) = value
            .split_once(':')
            .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
            .filter(|(w, h)| *w > 0 && *h > 0)
            .ok_or(format!("{SPEC}: Ratio value {value:?} is not width:height"))?;
        let name = format!("W{w}H{h}");
        variants.push_str(&format!("    /// `{value}`\n    #[serde(rename = \"{value}\")]\n    {name},\n"));
        all.push_str(&format!("Ratio::{name}, "));
        dims.push_str(&format!("            Ratio::{name} => ({w}, {h}),\n"));
        strs.push_str(&format!("            Ratio::{name} => \"{value}\",\n"));
    }
    let n = values.len();
    // Written by hand rather than derived: schemars would turn the variants' docs into a `oneOf`,
    // where the spec has a plain string enum.
    let schema = format!(
        "impl schemars::JsonSchema for Ratio {{\n\
         \x20   fn schema_name() -> String {{\n        \"Ratio\".to_string()\n    }}\n\n\
         \x20   fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {{\n\
         \x20       schemars::schema::SchemaObject {{\n\
         \x20           metadata: Some(Box::new(schemars::schema::Metadata {{\n\
         \x20               description: Some(\"Output resolution as `width:height`.\".to_string()),\n\
         \x20               ..Default::default()\n            }})),\n\
         \x20           instance_type: Some(schemars::schema::InstanceType::String.into()),\n\
         \x20           enum_values: Some(vec![{}]),\n\
         \x20           ..Default::default()\n        }}\n        .into()\n    }}\n}}\n",
        values.iter().map(|v| format!("{v:?}.into()")).collect::<Vec<_>>().join(", ")
    );
    Ok(format!(
        "/// An output resolution as `width:height`, one variant per value of the spec's `Ratio` enum\n\
         /// (generated: the variants follow the spec). Which ratios a model takes is in [`crate::Catalogue`].\n\
         #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]\n\
         #[non_exhaustive]\n\
         pub enum Ratio {{\n{variants}}}\n\n\
         impl Ratio {{\n\
         \x20   /// Every ratio the spec lists, in its order.\n\
         \x20   pub const ALL: [Ratio; {n}] = [{all}];\n\n\
         \x20   /// The value as sent on the wire, e.g. `\"1280:720\"`.\n\
         \x20   pub fn as_str(self) -> &'static str {{\n        match self {{\n{strs}        }}\n    }}\n\n\
         \x20   fn dimensions(self) -> (u32, u32) {{\n        match self {{\n{dims}        }}\n    }}\n}}\n\n{schema}"
    ))
}

fn string_list(value: &serde_norway::Value) -> Option<Vec<String>> {
    value.as_sequence()?.iter().map(|v| v.as_str().map(str::to_string)).collect()
}

/// OpenAPI 3.0 has no null type: the spec says "a task or `null`" as `anyOf: [Task, NullValue]`
/// (`NullValue` being `nullable` with `enum: [null]`), which every validator reads right but
/// typify turns into a struct of optional parts. For progenitor it becomes `allOf: [Task]` with
/// `nullable: true`, which typify turns into `Option<Task>`; a field that is only ever `null`
/// becomes a field of any value.
fn null_unions_as_options(spec: &mut serde_json::Value) {
    let Some(schemas) = spec.pointer("/components/schemas").and_then(|s| s.as_object()) else { return };
    let null_only: Vec<String> = schemas
        .iter()
        .filter(|(_, s)| {
            s.get("nullable") == Some(&serde_json::Value::Bool(true))
                && s.get("enum") == Some(&serde_json::json!([null]))
        })
        .map(|(name, _)| format!("#/components/schemas/{name}"))
        .collect();
    fn walk(node: &mut serde_json::Value, null_only: &[String]) {
        match node {
            serde_json::Value::Object(map) => {
                for key in ["anyOf", "oneOf"] {
                    let Some(serde_json::Value::Array(branches)) = map.get(key) else { continue };
                    let is_null = |b: &serde_json::Value| {
                        b.get("$ref").and_then(|r| r.as_str()).is_some_and(|r| null_only.iter().any(|n| n == r))
                    };
                    if branches.len() == 2 && branches.iter().filter(|b| is_null(b)).count() == 1 {
                        let other = branches.iter().find(|b| !is_null(b)).cloned().expect("two branches");
                        map.remove(key);
                        map.insert("allOf".into(), serde_json::json!([other]));
                        map.insert("nullable".into(), serde_json::Value::Bool(true));
                    }
                }
                // A bare "always null" field is read as any value: a decoder must stay liberal
                // in what the gateway puts there.
                let bare_null =
                    map.get("$ref").and_then(|r| r.as_str()).is_some_and(|r| null_only.iter().any(|n| n == r));
                if bare_null {
                    map.remove("$ref");
                }
                map.values_mut().for_each(|v| walk(v, null_only));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, null_only)),
            _ => {}
        }
    }
    if let Some(schemas) = spec.pointer_mut("/components/schemas") {
        walk(schemas, &null_only);
    }
}

/// The spec declares its error answers `application/json` with the shapes the service sends, for
/// every other tool. The thin layer reads error bodies itself, because proxies in front answer
/// with HTML pages and empty bodies too (src/client.rs `api_error`): progenitor gets them as raw
/// bytes, so a body that is not JSON never turns an API error into a decode error.
fn error_bodies_as_bytes(spec: &mut serde_json::Value) {
    fn raw(response: &mut serde_json::Value) {
        if let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) {
            if let Some(media) = content.shift_remove("application/json") {
                content.insert("application/octet-stream".into(), media);
            }
        }
    }
    let is_error = |status: &str| status.starts_with('4') || status.starts_with('5') || status == "default";
    if let Some(responses) = spec.pointer_mut("/components/responses").and_then(|r| r.as_object_mut()) {
        // Shared responses are only used for errors here; a success response is inline.
        responses.values_mut().for_each(raw);
    }
    if let Some(paths) = spec.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for item in paths.values_mut().filter_map(|i| i.as_object_mut()) {
            for operation in item.values_mut() {
                let Some(responses) = operation.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
                for (status, response) in responses.iter_mut() {
                    if is_error(status) {
                        raw(response);
                    }
                }
            }
        }
    }
}

/// `request.schema.json` (what `schema` prints) and `components.schema.json` (every component
/// schema under `$defs`), as JSON Schema 2020-12 converted from the spec: see build/json_schema.rs.
fn write_json_schemas(spec: &serde_json::Value, out_dir: &Path) -> Result<(), String> {
    let defs = json_schema::components(spec);
    let mut request = json_schema::standalone("ImageToVideoRequest", &defs)
        .ok_or_else(|| format!("{SPEC}: no components.schemas.ImageToVideoRequest"))?;
    // The model catalogue as if/then rules, so a standard validator applies each model's rules.
    let per_model = json_schema::model_conditionals(&spec["components"]["schemas"]["ImageToVideoRequest"]["x-models"]);
    if !per_model.is_empty() {
        request["allOf"] = serde_json::Value::Array(per_model);
    }
    request["$comment"] = serde_json::json!(format!(
        "The body of POST /runwayml/v1/image_to_video, converted from {SPEC} (version {}). maxLength counts \
         Unicode characters; the service counts UTF-16 code units (a character outside the BMP counts twice).",
        spec.pointer("/info/version").and_then(|v| v.as_str()).unwrap_or("?")
    ));
    let all = serde_json::json!({"$schema": json_schema::DIALECT, "$defs": defs});
    for (name, doc) in [("request.schema.json", &request), ("components.schema.json", &all)] {
        let text = serde_json::to_string_pretty(doc).expect("JSON values serialise");
        let path = out_dir.join(name);
        fs::write(&path, text).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    }
    Ok(())
}

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a literal Rust path parses")
}
