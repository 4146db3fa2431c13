//! The model catalogue: which rules each known model adds, read from the spec's `x-models` by
//! `build.rs` — and the one validator of a create body, shared by the client (before sending)
//! and the simulator (on receipt).
//!
//! Every request follows the field rules of the spec (an image that passes [`check_image`], a
//! model id, `seed` 0–999999999, `promptText` non-empty and at most 512 UTF-16 units, ...). A
//! known model adds its own: ratios, durations, keyframe positions, required fields, and which
//! optional fields it takes at all. A model the catalogue does not know gets the field rules only:
//! it is sent, never refused.
//!
//! [`check_image`]: crate::check_image

use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::{
    error::Error,
    image::{check_image_field, redact},
    model_rules::ModelRules,
    Ratio,
};

include!(concat!(env!("OUT_DIR"), "/request_fields.rs"));

/// The largest seed the API accepts.
pub const SEED_MAX: u64 = 999_999_999;
/// The longest `promptText`, in UTF-16 code units (how Runway counts).
pub const PROMPT_TEXT_MAX_UTF16: usize = 512;

static BUILTIN: LazyLock<Catalogue> = LazyLock::new(|| {
    let models: Vec<ModelRules> = serde_json::from_str(include_str!(concat!(env!("OUT_DIR"), "/catalogue.json")))
        .expect("build.rs wrote the catalogue with these types");
    Catalogue { models }
});

/// The known models and their rules.
///
/// ```
/// use cometapi_runway::Catalogue;
/// let ids: Vec<&str> = Catalogue::builtin().models().iter().map(|m| m.id.as_str()).collect();
/// assert!(ids.contains(&"gen3a_turbo") && ids.contains(&"veo3.1"));
/// assert!(Catalogue::builtin().get("some_future_model").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    models: Vec<ModelRules>,
}

impl Catalogue {
    /// The catalogue in this crate's spec (`openapi/cometapi-runway.yaml`, `x-models`).
    pub fn builtin() -> &'static Catalogue {
        &BUILTIN
    }

    /// A catalogue from an `x-models` map as the spec writes it (JSON form), checked the way
    /// `build.rs` checks the crate's own: ratios from the spec's enum, fields that exist.
    ///
    /// ```
    /// use cometapi_runway::{Catalogue, ImageToVideo};
    /// let catalogue = Catalogue::from_x_models(&serde_json::json!({
    ///     "gen9": {"summary": "tomorrow's model", "ratios": ["960:960"], "durations": [3],
    ///              "keyframes": [["first"]], "fields": ["duration", "ratio"], "requires": []}
    /// })).unwrap();
    /// let request = ImageToVideo::new("https://example.com/cat.jpg").model("gen9").duration(5);
    /// let err = request.build_with(&catalogue).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid duration 5 for gen9: must be 3");
    /// ```
    pub fn from_x_models(x_models: &Value) -> Result<Catalogue, Error> {
        let map = x_models
            .as_object()
            .ok_or_else(|| Error::invalid("x-models", "(not a map)", "must map model ids to rules"))?;
        let ratios: Vec<String> = Ratio::ALL.iter().map(|r| r.as_str().to_string()).collect();
        let properties: Vec<String> = REQUEST_FIELDS.iter().map(|f| f.to_string()).collect();
        let mut models = Vec::with_capacity(map.len());
        for (id, rules) in map {
            let mut rules: ModelRules = serde_json::from_value(rules.clone())
                .map_err(|e| Error::invalid("x-models", id, format!("not a model entry: {e}")))?;
            rules.id = id.clone();
            rules.check(&ratios, &properties).map_err(|e| Error::invalid("x-models", id, e))?;
            models.push(rules);
        }
        Ok(Catalogue { models })
    }

    /// Every known model, in the spec's order.
    pub fn models(&self) -> &[ModelRules] {
        &self.models
    }

    /// The ratios `model` takes, in the spec's order: its own for a known model, every ratio of
    /// the spec for one the catalogue does not know.
    ///
    /// ```
    /// use cometapi_runway::{Catalogue, Ratio};
    /// assert!(!Catalogue::builtin().ratios_for("gen4_turbo").contains(&Ratio::W1920H1080));
    /// assert_eq!(Catalogue::builtin().ratios_for("gen9_future"), Ratio::ALL);
    /// ```
    pub fn ratios_for(&self, model: &str) -> Vec<Ratio> {
        match self.get(model) {
            Some(rules) => Ratio::ALL.into_iter().filter(|r| rules.ratios.iter().any(|s| s == r.as_str())).collect(),
            None => Ratio::ALL.to_vec(),
        }
    }

    /// The rules of one model, if it is known.
    pub fn get(&self, model: &str) -> Option<&ModelRules> {
        self.models.iter().find(|m| m.id == model)
    }

    /// Checks a create body as it goes on the wire: the field rules, then the model's own rules
    /// when the model is known (unless `model_rules` is false). The first broken rule is named.
    ///
    /// ```
    /// use cometapi_runway::Catalogue;
    /// let body = serde_json::json!({"promptImage": "https://example.com/a.jpg", "model": "veo3.1", "duration": 5});
    /// let err = Catalogue::builtin().check(&body, true).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid duration 5 for veo3.1: must be 4, 6 or 8");
    /// assert!(Catalogue::builtin().check(&body, false).is_ok());
    /// ```
    pub fn check(&self, body: &Value, model_rules: bool) -> Result<(), Error> {
        let body =
            body.as_object().ok_or_else(|| Error::invalid("request", "(not an object)", "must be a JSON object"))?;
        let positions = check_fields(body)?;
        let model = body.get("model").and_then(Value::as_str).unwrap_or_default();
        match self.get(model) {
            Some(rules) if model_rules => check_model(rules, body, &positions),
            _ => Ok(()),
        }
    }
}

/// The field name as a `&'static str` (errors carry those): one of the request's properties.
fn field_name(name: &str) -> &'static str {
    REQUEST_FIELDS.iter().find(|f| **f == name).copied().unwrap_or("request")
}

/// The rules every request follows; returns the keyframe positions, in order.
fn check_fields(body: &Map<String, Value>) -> Result<Vec<&'static str>, Error> {
    let positions = match body.get("promptImage") {
        None => return Err(Error::invalid("promptImage", "(missing)", "is required")),
        Some(Value::String(uri)) => {
            check_image_field("promptImage", uri)?;
            vec!["first"]
        }
        Some(Value::Array(frames)) => check_keyframes(frames)?,
        Some(other) => {
            return Err(Error::invalid(
                "promptImage",
                other,
                "must be an image URL or a list of {\"uri\", \"position\"} keyframes",
            ))
        }
    };
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() && !m.chars().any(|c| c.is_whitespace() || c.is_control()) => {}
        Some(other) => {
            return Err(Error::invalid("model", other, "must be a non-empty model id without spaces, e.g. gen3a_turbo"))
        }
        None => return Err(Error::invalid("model", "(missing)", "is required")),
    }
    if let Some(seed) = body.get("seed") {
        if seed.as_u64().is_none_or(|s| s > SEED_MAX) {
            return Err(Error::invalid("seed", seed, format!("must be an integer between 0 and {SEED_MAX}")));
        }
    }
    for field in ["promptText", "negativePrompt"] {
        let Some(value) = body.get(field) else { continue };
        let field = field_name(field);
        let Some(text) = value.as_str() else { return Err(Error::invalid(field, value, "must be a string")) };
        if text.trim().is_empty() {
            return Err(Error::invalid(field, format!("{text:?}"), "must not be empty when given"));
        }
        let units = text.encode_utf16().count();
        if field == "promptText" && units > PROMPT_TEXT_MAX_UTF16 {
            return Err(Error::invalid(
                field,
                format!("{text:?}"),
                format!("must be at most {PROMPT_TEXT_MAX_UTF16} UTF-16 code units, got {units}"),
            ));
        }
    }
    for field in ["watermark", "audio"] {
        if let Some(value) = body.get(field).filter(|v| !v.is_boolean()) {
            return Err(Error::invalid(field_name(field), value, "must be true or false"));
        }
    }
    if let Some(duration) = body.get("duration") {
        if !duration.as_u64().is_some_and(|d| (1..=u64::from(u32::MAX)).contains(&d)) {
            return Err(Error::invalid("duration", duration, "must be a whole number of seconds, at least 1"));
        }
    }
    if let Some(ratio) = body.get("ratio") {
        if !ratio.as_str().is_some_and(|r| Ratio::ALL.iter().any(|known| known.as_str() == r)) {
            return Err(Error::invalid(
                "ratio",
                ratio,
                format!("must be one of {}", list(Ratio::ALL.iter().map(|r| r.as_str()))),
            ));
        }
    }
    if let Some(moderation) = body.get("contentModeration") {
        let threshold = moderation.as_object().map(|m| m.get("publicFigureThreshold"));
        match threshold {
            Some(None) => {}
            Some(Some(Value::String(t))) if t == "auto" || t == "low" => {}
            _ => {
                return Err(Error::invalid(
                    "contentModeration",
                    moderation,
                    "must be {\"publicFigureThreshold\": \"auto\" | \"low\"}",
                ))
            }
        }
    }
    Ok(positions)
}

fn check_keyframes(frames: &[Value]) -> Result<Vec<&'static str>, Error> {
    if frames.is_empty() || frames.len() > 2 {
        return Err(Error::invalid(
            "promptImage",
            format!("({} keyframes)", frames.len()),
            "a keyframe list holds one or two keyframes",
        ));
    }
    let mut positions = Vec::with_capacity(2);
    for (i, frame) in frames.iter().enumerate() {
        let uri = frame.get("uri").and_then(Value::as_str);
        let position = match frame.get("position").and_then(Value::as_str) {
            Some("first") => "first",
            Some("last") => "last",
            _ => "",
        };
        let shown = || redact(&frame.to_string());
        let Some(uri) = uri.filter(|_| !position.is_empty()) else {
            return Err(Error::invalid(
                "promptImage",
                shown(),
                format!("keyframe {} must be {{\"uri\": \"https://…\", \"position\": \"first\" | \"last\"}}", i + 1),
            ));
        };
        if positions.contains(&position) {
            return Err(Error::invalid("promptImage", shown(), format!("two keyframes at position {position}")));
        }
        check_image_field("promptImage", uri)?;
        positions.push(position);
    }
    Ok(positions)
}

fn check_model(rules: &ModelRules, body: &Map<String, Value>, positions: &[&str]) -> Result<(), Error> {
    let model = rules.id.as_str();
    for field in &rules.requires {
        if !body.contains_key(field) {
            return Err(Error::invalid_for(model, field_name(field), "(missing)", format!("{model} requires {field}")));
        }
    }
    for (field, value) in body {
        if field == "promptImage" || field == "model" || rules.fields.contains(field) {
            continue;
        }
        return Err(Error::invalid_for(
            model,
            field_name(field),
            value,
            format!("{model} does not take {field} (it takes {})", list(rules.fields.iter().map(String::as_str))),
        ));
    }
    if let Some(ratio) = body.get("ratio").and_then(Value::as_str) {
        if !rules.ratios.iter().any(|r| r == ratio) {
            return Err(Error::invalid_for(
                model,
                "ratio",
                format!("{ratio:?}"),
                format!("must be one of {}", list(rules.ratios.iter().map(String::as_str))),
            ));
        }
    }
    if let Some(duration) = body.get("duration").and_then(Value::as_u64) {
        if !rules.durations.iter().any(|&d| u64::from(d) == duration) {
            return Err(Error::invalid_for(
                model,
                "duration",
                duration,
                format!("must be {}", durations(&rules.durations)),
            ));
        }
    }
    if !rules.allows_keyframes(positions) {
        let allowed: Vec<String> = rules.keyframes.iter().map(|set| format!("[{}]", set.join(", "))).collect();
        return Err(Error::invalid_for(
            model,
            "promptImage",
            format!("(keyframes [{}])", positions.join(", ")),
            format!("keyframe positions must be {}", or_list(&allowed)),
        ));
    }
    Ok(())
}

/// `4, 6 or 8`; a run of three or more whole seconds as `2 to 10`.
pub(crate) fn durations(values: &[u32]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let contiguous = sorted.windows(2).all(|w| w[1] == w[0] + 1);
    match sorted.as_slice() {
        [first, .., last] if contiguous && sorted.len() >= 3 => format!("{first} to {last}"),
        _ => or_list(&sorted.iter().map(u32::to_string).collect::<Vec<_>>()),
    }
}

fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_list_or_a_range() {
        assert_eq!(durations(&[4, 6, 8]), "4, 6 or 8");
        assert_eq!(durations(&[5, 10]), "5 or 10");
        assert_eq!(durations(&[8]), "8");
        assert_eq!(durations(&[2, 3, 4, 5, 6, 7, 8, 9, 10]), "2 to 10");
    }

    #[test]
    fn every_builtin_field_name_is_a_request_property() {
        for model in Catalogue::builtin().models() {
            for field in model.fields.iter().chain(&model.requires) {
                assert_eq!(field_name(field), field.as_str(), "{}", model.id);
            }
        }
    }
}
