//! One model's rules as the spec's `x-models` writes them.
//!
//! This file is compiled twice: into the crate, and into `build.rs` (through `#[path]`), which
//! reads the spec's catalogue with these very types and checks it before the crate is built. One
//! definition of the catalogue's format, so the build and the crate cannot disagree on it.

use serde::{Deserialize, Serialize};

/// The rules one known model adds to the field rules of every request, from the spec's
/// `x-models` (see [`Catalogue`](crate::Catalogue)).
///
/// ```
/// let veo = cometapi_runway::Catalogue::builtin().get("veo3.1").unwrap();
/// assert_eq!(veo.durations, [4, 6, 8]);
/// assert!(veo.ratios.iter().any(|r| r == "1920:1080"));
/// assert!(veo.allows_keyframes(&["first", "last"]) && !veo.allows_keyframes(&["last"]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelRules {
    /// The model id, as sent in `model`.
    #[serde(default)]
    pub id: String,
    /// One line on what the model is.
    pub summary: String,
    /// The ratios it takes, as `width:height`.
    pub ratios: Vec<String>,
    /// The durations it takes, in seconds.
    pub durations: Vec<u32>,
    /// The allowed sets of keyframe positions (`first`, `last`), each in the order sent.
    pub keyframes: Vec<Vec<String>>,
    /// The optional request fields it takes (wire names); any other optional field is refused.
    pub fields: Vec<String>,
    /// The request fields it requires beyond `promptImage` and `model`.
    pub requires: Vec<String>,
}

impl ModelRules {
    /// Whether this exact set of keyframe positions is allowed (order does not matter).
    pub fn allows_keyframes(&self, positions: &[&str]) -> bool {
        let mut given: Vec<&str> = positions.to_vec();
        given.sort_unstable();
        self.keyframes.iter().any(|set| {
            let mut allowed: Vec<&str> = set.iter().map(String::as_str).collect();
            allowed.sort_unstable();
            allowed == given
        })
    }

    /// Checks the entry against the spec it came from: every ratio one of the spec's, every field
    /// a property of the request, positions `first`/`last`. Says what is wrong, naming the model.
    pub fn check(&self, spec_ratios: &[String], properties: &[String]) -> Result<(), String> {
        let id = &self.id;
        let fail = |what: String| Err(format!("x-models.{id}: {what}"));
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("the model id must be non-empty, without spaces".into());
        }
        if self.ratios.is_empty() || self.durations.is_empty() || self.keyframes.is_empty() {
            return fail("ratios, durations and keyframes must each list at least one value".into());
        }
        if let Some(r) = self.ratios.iter().find(|r| !spec_ratios.contains(r)) {
            return fail(format!("ratio {r:?} is not in the Ratio enum; add it there first"));
        }
        if self.durations.contains(&0) {
            return fail("a duration must be at least 1 second".into());
        }
        for set in &self.keyframes {
            let bad = set.iter().find(|p| *p != "first" && *p != "last");
            if set.is_empty() || set.len() > 2 || bad.is_some() || (set.len() == 2 && set[0] == set[1]) {
                return fail(format!("keyframes {set:?}: each set is [first], [last] or [first, last]"));
            }
        }
        for field in self.fields.iter().chain(&self.requires) {
            if !properties.contains(field) || field == "promptImage" || field == "model" {
                return fail(format!("{field:?} is not an optional property of ImageToVideoRequest"));
            }
        }
        if let Some(f) = self.requires.iter().find(|f| !self.fields.contains(f)) {
            return fail(format!("{f:?} is required but not listed in fields"));
        }
        Ok(())
    }
}
