//! `schema`: the JSON Schema of the create request.

use crate::{exit::Failure, output};

/// The create request's JSON Schema, converted from the spec at build time (every limit and
/// enum kept; see `cometapi_runway::schema`): pretty for people, one line with `--json`.
pub fn run(json: bool) -> Result<(), Failure> {
    let value = cometapi_runway::schema::request();
    if json {
        output::json_line(&value);
    } else {
        output::text(&serde_json::to_string_pretty(&value).unwrap_or_default());
    }
    Ok(())
}
