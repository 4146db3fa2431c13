//! The ratio parser and the request validator on arbitrary text and numbers: they may refuse,
//! never panic; what they accept round-trips.
#![no_main]

use cometapi_runway::{ImageToVideo, Ratio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ratio) = Ratio::parse(&text) {
        assert_eq!(Ratio::parse(&ratio.to_string()).unwrap(), ratio);
    }
    // Split the input into the request's string fields and take numbers from its first bytes.
    let mut parts = text.splitn(3, '\u{1f}');
    let image = parts.next().unwrap_or_default();
    let prompt = parts.next();
    let model = parts.next();
    let number = |i: usize| data.get(i..i + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let mut request = ImageToVideo::new(image).seed(number(0)).duration((number(8) % 16) as u32);
    if let Some(prompt) = prompt {
        request = request.prompt_text(prompt);
    }
    if let Some(model) = model {
        request = request.model(model);
    }
    if let Some(ratio) = Ratio::ALL.get(data.len() % 9) {
        request = request.ratio(*ratio);
    }
    if let Ok(body) = request.build() {
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["promptImage"], image);
    }
});
