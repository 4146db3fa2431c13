//! `models`: the model catalogue this version knows (from the spec's `x-models`), with the rules
//! each model brings. A model not listed is still sent, with the field rules only.

use cometapi_runway::{Catalogue, ModelRules};
use serde_json::json;

use crate::output;

/// The catalogue as a table, or its JSON form.
pub fn run(json: bool) {
    let models = Catalogue::builtin().models();
    if json {
        output::json_line(&json!({
            "default": "gen3a_turbo",
            "models": models,
            "unknown_models": "sent as given, checked against the field rules only",
        }));
        return;
    }
    let mut table = String::new();
    for (i, m) in models.iter().enumerate() {
        if i > 0 {
            table.push('\n');
        }
        table.push_str(&describe(m));
    }
    table.push_str(
        "\n\nThe default model is gen3a_turbo. A model not listed here is sent as given, with the field rules only \
         (seed 0-999999999, prompt 1-512 UTF-16 units, an https:// or inline image).",
    );
    output::text(&table);
}

fn describe(m: &ModelRules) -> String {
    let keyframes: Vec<String> = m.keyframes.iter().map(|set| set.join("+")).collect();
    let requires = if m.requires.is_empty() { "-".to_string() } else { m.requires.join(", ") };
    format!(
        "{}  {}\n  ratios     {}\n  durations  {}\n  keyframes  {}\n  requires   {}\n  fields     {}\n",
        m.id,
        m.summary,
        m.ratios.join(" "),
        m.durations.iter().map(u32::to_string).collect::<Vec<_>>().join(" "),
        keyframes.join(" | "),
        requires,
        m.fields.join(", "),
    )
}
