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

#[path = "src/model_rules.rs"]
#[allow(dead_code)]
mod model_rules;

use model_rules::ModelRules;

const SPEC: &str = "openapi/cometapi-runway.yaml";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/model_rules.rs");

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
    let spec: openapiv3::OpenAPI =
        serde_norway::from_str(&text).map_err(|e| format!("{SPEC}: not a valid OpenAPI 3.0 document: {e}"))?;
    let raw: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| format!("{SPEC}: {e}"))?;
    let out_dir = env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?;
    let out = Path::new(&out_dir);
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

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a literal Rust path parses")
}
