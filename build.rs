//! Generates the typed CometAPI client from `openapi/cometapi-runway.yaml` into `OUT_DIR`.
//!
//! Nothing generated is committed: change the spec and rebuild. A spec that does not parse, or
//! that progenitor cannot turn into code, fails the build with a message naming the file.

use std::{env, fs, path::Path, process};

#[path = "build/json_schema.rs"]
mod json_schema;

const SPEC: &str = "openapi/cometapi-runway.yaml";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/json_schema.rs");

    if let Err(message) = generate() {
        // `cargo:warning` shows in every cargo front-end; the panic fails the build.
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
    let out_dir = env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    write_json_schemas(&value, Path::new(&out_dir))?;
    error_bodies_as_bytes(&mut value);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(value).map_err(|e| format!("{SPEC}: not a valid OpenAPI 3.0 document: {e}"))?;

    let mut settings = progenitor_impl::GenerationSettings::new();
    settings
        .with_interface(progenitor_impl::InterfaceStyle::Builder)
        .with_tag(progenitor_impl::TagStyle::Merged)
        // Configuration the hooks need (key, retry policy, request limit) travels with the
        // generated client; see src/hooks.rs.
        .with_inner_type(quote_path("crate::hooks::Inner"))
        // Our `ClientHooks` impl (src/hooks.rs) is required, not optional.
        .with_hooks(progenitor_impl::HooksMode::Expected)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq");

    let mut generator = progenitor_impl::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("{SPEC}: progenitor cannot generate a client from it: {e}"))?;
    let file =
        syn::parse2(tokens).map_err(|e| format!("{SPEC}: generated code does not parse (progenitor bug?): {e}"))?;
    let code = prettyplease::unparse(&file);

    let out = Path::new(&out_dir).join("cometapi_runway_generated.rs");
    fs::write(&out, code).map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
    Ok(())
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
