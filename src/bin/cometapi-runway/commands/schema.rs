//! `schema`: the JSON Schema of the create request.

use crate::{
    exit::{Code, Failure},
    output,
};

/// The create request's JSON Schema, from the types generated from the spec: pretty for
/// people, one line with `--json`.
pub fn run(json: bool) -> Result<(), Failure> {
    let schema = schemars::schema_for!(cometapi_runway::types::ImageToVideoRequest);
    let value = serde_json::to_value(&schema)
        .map_err(|e| Failure::new(Code::Api, "error", format!("cannot render the schema: {e}")))?;
    if json {
        output::json_line(&value);
    } else {
        output::text(&serde_json::to_string_pretty(&value).unwrap_or_default());
    }
    Ok(())
}
