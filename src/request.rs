//! Building an image-to-video request, with every rule of the API checked before anything is sent.

use std::{borrow::Cow, fmt};

use crate::{error::Error, types, Ratio};

/// The largest seed the API accepts.
pub const SEED_MAX: u64 = 999_999_999;
/// The longest `promptText`, in UTF-16 code units (how Runway counts).
pub const PROMPT_TEXT_MAX_UTF16: usize = 512;
/// The durations the API accepts, in seconds.
pub const DURATIONS: [u32; 2] = [5, 10];

/// A Runway image-to-video model id. The set grows over time, so any id is accepted;
/// the known ones have constants.
///
/// ```
/// use cometapi_runway::Model;
/// assert_eq!(Model::default(), Model::GEN3A_TURBO);
/// assert_eq!(Model::from("gen5_future").as_str(), "gen5_future");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Model(Cow<'static, str>);

impl Model {
    /// `gen3a_turbo`, the default.
    pub const GEN3A_TURBO: Model = Model(Cow::Borrowed("gen3a_turbo"));
    /// `gen4_turbo`.
    pub const GEN4_TURBO: Model = Model(Cow::Borrowed("gen4_turbo"));
    /// The models this version of the crate knows by name.
    pub const KNOWN: [Model; 2] = [Model::GEN3A_TURBO, Model::GEN4_TURBO];

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Model {
    fn default() -> Self {
        Model::GEN3A_TURBO
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Model {
    fn from(s: &str) -> Self {
        Model(Cow::Owned(s.to_string()))
    }
}

impl From<String> for Model {
    fn from(s: String) -> Self {
        Model(Cow::Owned(s))
    }
}

/// An image-to-video request. Setters never fail; [`ImageToVideo::build`] (called by
/// [`Client::create`](crate::Client::create)) checks every rule and names the field, the value
/// and the rule it broke.
///
/// ```
/// use cometapi_runway::{ImageToVideo, Model, Ratio};
/// let body = ImageToVideo::new("https://example.com/cat.jpg")
///     .prompt_text("the cat yawns")
///     .model(Model::GEN4_TURBO)
///     .ratio(Ratio::X7201280)
///     .duration(10)
///     .seed(42)
///     .build()
///     .unwrap();
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({"promptImage": "https://example.com/cat.jpg", "model": "gen4_turbo",
///         "promptText": "the cat yawns", "ratio": "720:1280", "duration": 10, "seed": 42,
///         "watermark": false})
/// );
/// let err = ImageToVideo::new("https://example.com/cat.jpg").duration(7).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid duration 7: must be 5 or 10 (seconds)");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ImageToVideo {
    prompt_image: String,
    model: Model,
    prompt_text: Option<String>,
    seed: Option<u64>,
    watermark: bool,
    duration: Option<u32>,
    ratio: Option<Ratio>,
}

impl ImageToVideo {
    /// A request for this source image: an `https://` URL or a `data:image/...;base64,` URI.
    pub fn new(prompt_image: impl Into<String>) -> Self {
        ImageToVideo {
            prompt_image: prompt_image.into(),
            model: Model::default(),
            prompt_text: None,
            seed: None,
            watermark: false,
            duration: None,
            ratio: None,
        }
    }

    /// Motion or scene description (at most 512 UTF-16 code units, non-empty).
    pub fn prompt_text(mut self, text: impl Into<String>) -> Self {
        self.prompt_text = Some(text.into());
        self
    }

    /// The model (default `gen3a_turbo`).
    pub fn model(mut self, model: impl Into<Model>) -> Self {
        self.model = model.into();
        self
    }

    /// Seed for reproducible results, 0–999999999.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Add a watermark (default `false`).
    pub fn watermark(mut self, yes: bool) -> Self {
        self.watermark = yes;
        self
    }

    /// Video length in seconds: 5 (the service's default) or 10.
    pub fn duration(mut self, seconds: u32) -> Self {
        self.duration = Some(seconds);
        self
    }

    /// Output resolution (the service's default is `1280:720`).
    pub fn ratio(mut self, ratio: Ratio) -> Self {
        self.ratio = Some(ratio);
        self
    }

    /// The source image as given.
    pub fn prompt_image_value(&self) -> &str {
        &self.prompt_image
    }

    /// Checks every rule and returns the wire body. Nothing is sent.
    pub fn build(&self) -> Result<types::ImageToVideoRequest, Error> {
        check_prompt_image(&self.prompt_image)?;
        let model = self.model.as_str();
        if model.is_empty() || model.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                "model",
                format!("{model:?}"),
                "must be a non-empty model id without spaces, e.g. gen3a_turbo",
            ));
        }
        if let Some(seed) = self.seed {
            if seed > SEED_MAX {
                return Err(Error::invalid("seed", seed, format!("must be between 0 and {SEED_MAX}")));
            }
        }
        if let Some(text) = &self.prompt_text {
            if text.trim().is_empty() {
                return Err(Error::invalid("promptText", format!("{text:?}"), "must not be empty when given"));
            }
            let units = text.encode_utf16().count();
            if units > PROMPT_TEXT_MAX_UTF16 {
                return Err(Error::invalid(
                    "promptText",
                    format!("{text:?}"),
                    format!("must be at most {PROMPT_TEXT_MAX_UTF16} UTF-16 code units, got {units}"),
                ));
            }
        }
        let duration = match self.duration {
            None => None,
            Some(d) if DURATIONS.contains(&d) => {
                Some(types::Duration::try_from(i64::from(d)).expect("5 and 10 are in the spec"))
            }
            Some(d) => return Err(Error::invalid("duration", d, "must be 5 or 10 (seconds)")),
        };
        let prompt_text = self.prompt_text.as_deref().map(str::parse::<types::ImageToVideoRequestPromptText>);
        let prompt_text =
            prompt_text.transpose().map_err(|e| Error::invalid("promptText", "(given)", e.to_string()))?;
        // The generated builder, not a struct literal: a property added to the spec appears as a
        // field of the generated type without this file having to change.
        types::ImageToVideoRequest::builder()
            .prompt_image(self.prompt_image.as_str())
            .model(model)
            .prompt_text(prompt_text)
            .seed(self.seed.map(|s| s as i64))
            .watermark(self.watermark)
            .duration(duration)
            .ratio(self.ratio)
            .try_into()
            .map_err(|e: types::error::ConversionError| {
                Error::invalid("request", "(built)", format!("rejected by the spec's schema: {e}"))
            })
    }
}

fn check_prompt_image(value: &str) -> Result<(), Error> {
    const RULE: &str = "must be an https:// URL or a data:image/...;base64, URI";
    let shown = || format!("{:?}", value);
    if let Some(rest) = value.strip_prefix("data:") {
        let ok = rest.starts_with("image/")
            && rest.split_once(',').is_some_and(|(meta, data)| meta.ends_with(";base64") && !data.is_empty());
        return if ok { Ok(()) } else { Err(Error::invalid("promptImage", shown(), RULE)) };
    }
    let url = url::Url::parse(value).map_err(|e| Error::invalid("promptImage", shown(), format!("{RULE} ({e})")))?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("promptImage", shown(), RULE));
    }
    Ok(())
}
