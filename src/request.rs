//! Building an image-to-video request, with every rule of the API checked before anything is sent.

use std::{borrow::Cow, fmt};

use serde_json::{Map, Value};

use crate::{catalogue::Catalogue, error::Error, types, Ratio};

pub use crate::catalogue::{PROMPT_TEXT_MAX_UTF16, SEED_MAX};

/// A Runway image-to-video model id. The set grows over time, so any id is accepted;
/// the ones in the crate's [`Catalogue`] have constants and are checked against their rules.
///
/// ```
/// use cometapi_runway::Model;
/// assert_eq!(Model::default(), Model::GEN3A_TURBO);
/// assert_eq!(Model::from("gen5_future").as_str(), "gen5_future");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Model(Cow<'static, str>);

impl Model {
    /// `gen3a_turbo`, the default (CometAPI's documented model).
    pub const GEN3A_TURBO: Model = Model(Cow::Borrowed("gen3a_turbo"));
    /// `gen4_turbo`.
    pub const GEN4_TURBO: Model = Model(Cow::Borrowed("gen4_turbo"));
    /// `gen4.5` (requires a prompt and a duration).
    pub const GEN4_5: Model = Model(Cow::Borrowed("gen4.5"));
    /// `veo3.1` (first and optional last frame, audio).
    pub const VEO3_1: Model = Model(Cow::Borrowed("veo3.1"));
    /// `veo3.1_fast`.
    pub const VEO3_1_FAST: Model = Model(Cow::Borrowed("veo3.1_fast"));
    /// `veo3` (8 seconds only).
    pub const VEO3: Model = Model(Cow::Borrowed("veo3"));

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

/// Where a keyframe sits in the video (generated from the spec's `KeyframePosition`).
pub use types::KeyframePosition;
/// How strictly Runway refuses recognisable public figures (generated from the spec).
pub use types::PublicFigureThreshold;

/// An image-to-video request. Setters never fail; [`ImageToVideo::build`] (called by
/// [`Client::create`](crate::Client::create)) checks every rule — the field rules every request
/// follows, then the model's own rules from the [`Catalogue`] — and names the field, the value,
/// the model and the rule it broke. Optional fields left unset are not sent.
///
/// ```
/// use cometapi_runway::{ImageToVideo, Model, Ratio};
/// let body = ImageToVideo::new("https://example.com/first.jpg")
///     .last_frame("https://example.com/last.jpg")
///     .model(Model::VEO3_1)
///     .prompt_text("the cat turns into a tiger")
///     .ratio(Ratio::W1920H1080)
///     .duration(8)
///     .build()
///     .unwrap();
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({"promptImage": [{"uri": "https://example.com/first.jpg", "position": "first"},
///                                        {"uri": "https://example.com/last.jpg", "position": "last"}],
///         "model": "veo3.1", "promptText": "the cat turns into a tiger", "ratio": "1920:1080", "duration": 8})
/// );
/// let err = ImageToVideo::new("https://example.com/cat.jpg").model(Model::VEO3_1).duration(5).build().unwrap_err();
/// assert_eq!(err.to_string(), "invalid duration 5 for veo3.1: must be 4, 6 or 8");
/// // A model the crate does not know is sent with the field rules only.
/// assert!(ImageToVideo::new("https://example.com/cat.jpg").model("gen9").duration(7).build().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ImageToVideo {
    keyframes: Vec<(KeyframePosition, String)>,
    model: Model,
    prompt_text: Option<String>,
    seed: Option<u64>,
    watermark: bool,
    duration: Option<u32>,
    ratio: Option<Ratio>,
    public_figure_threshold: Option<PublicFigureThreshold>,
    audio: Option<bool>,
    negative_prompt: Option<String>,
    model_rules: bool,
}

impl ImageToVideo {
    /// A request for this source image (the video's first frame): an `https://` URL or a
    /// `data:image/...;base64,` URI. Sent as a plain string unless a last frame is added.
    pub fn new(prompt_image: impl Into<String>) -> Self {
        ImageToVideo::from_keyframes([(KeyframePosition::First, prompt_image.into())])
    }

    /// A request from explicit keyframes, e.g. a last frame alone (which `gen3a_turbo` takes).
    ///
    /// ```
    /// use cometapi_runway::{ImageToVideo, KeyframePosition};
    /// let body = ImageToVideo::from_keyframes([(KeyframePosition::Last, "https://example.com/end.jpg")])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(serde_json::to_value(&body).unwrap()["promptImage"][0]["position"], "last");
    /// ```
    pub fn from_keyframes<S: Into<String>>(keyframes: impl IntoIterator<Item = (KeyframePosition, S)>) -> Self {
        ImageToVideo {
            keyframes: keyframes.into_iter().map(|(p, s)| (p, s.into())).collect(),
            model: Model::default(),
            prompt_text: None,
            seed: None,
            watermark: false,
            duration: None,
            ratio: None,
            public_figure_threshold: None,
            audio: None,
            negative_prompt: None,
            model_rules: true,
        }
    }

    /// The image the video ends on (`veo3.1`, `veo3.1_fast`, `gen3a_turbo`); the request's
    /// `promptImage` becomes a list of keyframes. Replaces a last frame set before.
    pub fn last_frame(mut self, image: impl Into<String>) -> Self {
        self.keyframes.retain(|(p, _)| *p != KeyframePosition::Last);
        self.keyframes.push((KeyframePosition::Last, image.into()));
        self
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

    /// Add a watermark. Only `true` is sent: the service's default is no watermark, and Runway
    /// dropped the field upstream, so only `gen3a_turbo` takes it.
    pub fn watermark(mut self, yes: bool) -> Self {
        self.watermark = yes;
        self
    }

    /// Video length in seconds; which lengths a model takes is in the [`Catalogue`]
    /// (`gen3a_turbo`: 5 or 10; `veo3.1`: 4, 6 or 8; ...).
    pub fn duration(mut self, seconds: u32) -> Self {
        self.duration = Some(seconds);
        self
    }

    /// Output resolution; which ratios a model takes is in the [`Catalogue`].
    pub fn ratio(mut self, ratio: Ratio) -> Self {
        self.ratio = Some(ratio);
        self
    }

    /// Content moderation's public-figure threshold (Gen-4 models).
    pub fn public_figure_threshold(mut self, threshold: PublicFigureThreshold) -> Self {
        self.public_figure_threshold = Some(threshold);
        self
    }

    /// Generate an audio track, or not (Veo 3.1 models; it affects the price). Sent as set.
    pub fn audio(mut self, yes: bool) -> Self {
        self.audio = Some(yes);
        self
    }

    /// What the video should not show (Veo 3.1 models).
    pub fn negative_prompt(mut self, text: impl Into<String>) -> Self {
        self.negative_prompt = Some(text.into());
        self
    }

    /// Whether to check the model's own rules from the [`Catalogue`] (default `true`). Turn it
    /// off to send a request the crate's catalogue would refuse — for a rule the service has
    /// relaxed since. The field rules (image, seed range, prompt length, ...) still apply.
    ///
    /// ```
    /// use cometapi_runway::{ImageToVideo, Model};
    /// let request = ImageToVideo::new("https://example.com/cat.jpg").model(Model::VEO3).duration(4);
    /// assert!(request.build().is_err());
    /// assert!(request.model_rules(false).build().is_ok());
    /// ```
    pub fn model_rules(mut self, check: bool) -> Self {
        self.model_rules = check;
        self
    }

    /// The source image as given (the first keyframe's, or the only one's).
    pub fn prompt_image_value(&self) -> &str {
        self.keyframes.first().map(|(_, uri)| uri.as_str()).unwrap_or_default()
    }

    /// The images of the request with their positions, in the order sent.
    pub fn keyframes(&self) -> impl Iterator<Item = (KeyframePosition, &str)> {
        self.keyframes.iter().map(|(position, uri)| (*position, uri.as_str()))
    }

    /// The video length asked for, if any.
    pub fn duration_seconds(&self) -> Option<u32> {
        self.duration
    }

    /// The model this request is for.
    pub fn model_id(&self) -> &Model {
        &self.model
    }

    /// Checks every rule against the crate's [`Catalogue`] and returns the wire body.
    /// Nothing is sent.
    pub fn build(&self) -> Result<types::ImageToVideoRequest, Error> {
        self.build_with(Catalogue::builtin())
    }

    /// As [`ImageToVideo::build`], against another catalogue.
    pub fn build_with(&self, catalogue: &Catalogue) -> Result<types::ImageToVideoRequest, Error> {
        let body = self.wire_json();
        catalogue.check(&body, self.model_rules)?;
        // Decoded into the generated type: a property added to the spec appears as a field of it
        // without this file having to change, and the spec's own constraints apply once more.
        serde_json::from_value(body)
            .map_err(|e| Error::invalid("request", "(built)", format!("rejected by the spec's schema: {e}")))
    }

    /// The body as JSON, exactly as it will be sent (unchecked).
    fn wire_json(&self) -> Value {
        let mut body = Map::new();
        let prompt_image = match self.keyframes.as_slice() {
            [(KeyframePosition::First, uri)] => Value::String(uri.clone()),
            frames => Value::Array(
                frames
                    .iter()
                    .map(|(position, uri)| serde_json::json!({"uri": uri, "position": position.to_string()}))
                    .collect(),
            ),
        };
        body.insert("promptImage".into(), prompt_image);
        body.insert("model".into(), Value::String(self.model.as_str().to_string()));
        if let Some(text) = &self.prompt_text {
            body.insert("promptText".into(), Value::String(text.clone()));
        }
        if let Some(ratio) = self.ratio {
            body.insert("ratio".into(), Value::String(ratio.as_str().to_string()));
        }
        if let Some(duration) = self.duration {
            body.insert("duration".into(), Value::from(duration));
        }
        if let Some(seed) = self.seed {
            body.insert("seed".into(), Value::from(seed));
        }
        if self.watermark {
            body.insert("watermark".into(), Value::Bool(true));
        }
        if let Some(threshold) = self.public_figure_threshold {
            body.insert(
                "contentModeration".into(),
                serde_json::json!({"publicFigureThreshold": threshold.to_string()}),
            );
        }
        if let Some(audio) = self.audio {
            body.insert("audio".into(), Value::Bool(audio));
        }
        if let Some(text) = &self.negative_prompt {
            body.insert("negativePrompt".into(), Value::String(text.clone()));
        }
        Value::Object(body)
    }
}
