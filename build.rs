//! Generates the typed CometAPI client from `openapi/cometapi-runway.yaml` into `OUT_DIR`.
//!
//! Nothing generated is committed: change the spec and rebuild. A spec that does not parse, or
//! that progenitor cannot turn into code, fails the build with a message naming the file.

use std::{env, fs, path::Path, process};

const SPEC: &str = "openapi/cometapi-runway.yaml";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");

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
    let spec: openapiv3::OpenAPI =
        serde_norway::from_str(&text).map_err(|e| format!("{SPEC}: not a valid OpenAPI 3.0 document: {e}"))?;

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

    let out =
        Path::new(&env::var("OUT_DIR").map_err(|e| format!("OUT_DIR: {e}"))?).join("cometapi_runway_generated.rs");
    fs::write(&out, code).map_err(|e| format!("{}: cannot write: {e}", out.display()))?;
    Ok(())
}

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a literal Rust path parses")
}
