//! The spec's schemas as standard JSON Schema (draft 2020-12), converted at build time from
//! `openapi/cometapi-runway.yaml` so that every limit and enum of the spec is in them: seed
//! bounds, prompt length, the ratio enum, required fields.
//!
//! Validate a create body with any JSON Schema tool, in any language:
//!
//! ```
//! let schema = cometapi_runway::schema::request();
//! assert_eq!(schema["properties"]["seed"]["maximum"], 999_999_999);
//! assert!(schema["required"].as_array().unwrap().contains(&"promptImage".into()));
//! ```
//!
//! One difference the format cannot express: `maxLength` counts Unicode characters, the
//! service counts UTF-16 code units (a character outside the Basic Multilingual Plane counts
//! twice); [`ImageToVideo::build`](crate::ImageToVideo::build) checks the service's count.

/// The JSON Schema of the create request body (`POST /runwayml/v1/image_to_video`), as text:
/// what `cometapi-runway schema` prints.
pub const REQUEST_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/request.schema.json"));

/// Every schema of the spec (requests, both task shapes, the error bodies) under `$defs`, as
/// text: refer to one as `{"$ref": "#/$defs/RunwayTask"}` beside these `$defs`.
pub const COMPONENTS_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/components.schema.json"));

/// [`REQUEST_JSON`], parsed.
///
/// ```
/// let schema = cometapi_runway::schema::request();
/// assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
/// ```
pub fn request() -> serde_json::Value {
    serde_json::from_str(REQUEST_JSON).expect("build.rs writes valid JSON")
}

/// [`COMPONENTS_JSON`], parsed.
///
/// ```
/// let all = cometapi_runway::schema::components();
/// assert!(all["$defs"]["RunwayTask"]["required"].as_array().unwrap().contains(&"status".into()));
/// ```
pub fn components() -> serde_json::Value {
    serde_json::from_str(COMPONENTS_JSON).expect("build.rs writes valid JSON")
}
