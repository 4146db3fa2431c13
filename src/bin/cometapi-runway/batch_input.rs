//! `batch --input`: CSV or JSON lines into items, every line checked, each error naming line,
//! field, value and rule.

use std::{collections::BTreeMap, fmt, path::Path};

use serde_json::Value;

/// The keys an item may have: the request flags' names, plus `output`.
pub const KEYS: &[&str] = &[
    "image",
    "prompt",
    "model",
    "ratio",
    "duration",
    "seed",
    "watermark",
    "last_frame",
    "audio",
    "negative_prompt",
    "public_figure_threshold",
    "output",
];

/// How the input file is written, by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, String> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "jsonl" | "ndjson" | "json" => Ok(Format::JsonLines),
            _ => Err(format!(
                "cannot tell the format of {} from its extension: name it .csv (with a header row) or .jsonl",
                path.display()
            )),
        }
    }
}

/// One item as written: its line, and its fields (absent ones left out).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item {
    pub line: usize,
    pub image: String,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub ratio: Option<String>,
    pub duration: Option<u32>,
    pub seed: Option<u64>,
    pub watermark: Option<bool>,
    pub last_frame: Option<String>,
    pub audio: Option<bool>,
    pub negative_prompt: Option<String>,
    pub public_figure_threshold: Option<String>,
    pub output: Option<String>,
}

impl Item {
    /// The item's content as one canonical text (keys sorted, line number left out): what the
    /// journal knows it by, so moving a line keeps its identity and editing it makes a new one.
    pub fn identity(&self) -> String {
        let mut map = BTreeMap::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(k.to_string(), v);
            }
        };
        put("image", Some(Value::from(self.image.clone())));
        put("prompt", self.prompt.clone().map(Value::from));
        put("model", self.model.clone().map(Value::from));
        put("ratio", self.ratio.clone().map(Value::from));
        put("duration", self.duration.map(Value::from));
        put("seed", self.seed.map(Value::from));
        put("watermark", self.watermark.map(Value::from));
        put("last_frame", self.last_frame.clone().map(Value::from));
        put("audio", self.audio.map(Value::from));
        put("negative_prompt", self.negative_prompt.clone().map(Value::from));
        put("public_figure_threshold", self.public_figure_threshold.clone().map(Value::from));
        put("output", self.output.clone().map(Value::from));
        serde_json::to_string(&map).unwrap_or_default()
    }
}

/// A broken rule on one line.
#[derive(Clone, Debug, PartialEq)]
pub struct LineError {
    pub line: usize,
    pub field: String,
    pub value: String,
    pub rule: String,
}

impl LineError {
    pub fn new(line: usize, field: &str, value: impl fmt::Display, rule: impl Into<String>) -> LineError {
        let value = value.to_string();
        let value = if value.chars().count() > 60 {
            format!("{}…", value.chars().take(60).collect::<String>())
        } else {
            value
        };
        LineError { line, field: field.to_string(), value, rule: rule.into() }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} {:?}: {}", self.line, self.field, self.value, self.rule)
    }
}

/// Reads every line; returns the items of the lines that read, and an error per broken rule.
pub fn parse(text: &str, format: Format) -> (Vec<Item>, Vec<LineError>) {
    let rows = match format {
        Format::Csv => csv_rows(text),
        Format::JsonLines => json_rows(text),
    };
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for row in rows {
        match row {
            Ok((line, fields)) => match item(line, fields) {
                Ok(item) => items.push(item),
                Err(mut e) => errors.append(&mut e),
            },
            Err(e) => errors.push(e),
        }
    }
    if items.is_empty() && errors.is_empty() {
        errors.push(LineError::new(1, "input", "", "has no items"));
    }
    (items, errors)
}

type Row = Result<(usize, Vec<(String, Value)>), LineError>;

fn json_rows(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => rows.push(Ok((line_no, map.into_iter().collect()))),
            Ok(other) => rows.push(Err(LineError::new(line_no, "line", other, "must be a JSON object"))),
            Err(e) => rows.push(Err(LineError::new(line_no, "line", line.trim(), format!("is not JSON: {e}")))),
        }
    }
    rows
}

fn csv_rows(text: &str) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return vec![Err(LineError::new(1, "header", "", format!("is not CSV: {e}")))],
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                rows.push(Err(LineError::new(line, "line", "", format!("is not CSV: {e}"))));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let fields = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect();
        rows.push(Ok((line, fields)));
    }
    rows
}

fn item(line: usize, fields: Vec<(String, Value)>) -> Result<Item, Vec<LineError>> {
    let mut item = Item { line, ..Item::default() };
    let mut errors = Vec::new();
    let mut image = None;
    for (key, value) in fields {
        if value.is_null() {
            continue;
        }
        let result = match key.as_str() {
            "image" => text(line, &key, &value).map(|v| image = Some(v)),
            "prompt" => text(line, &key, &value).map(|v| item.prompt = Some(v)),
            "model" => text(line, &key, &value).map(|v| item.model = Some(v)),
            "ratio" => text(line, &key, &value).map(|v| item.ratio = Some(v)),
            "duration" => number(line, &key, &value)
                .and_then(|n| u32::try_from(n).map_err(|_| LineError::new(line, &key, n, "is too large")))
                .map(|v| item.duration = Some(v)),
            "seed" => number(line, &key, &value).map(|v| item.seed = Some(v)),
            "watermark" => boolean(line, &key, &value).map(|v| item.watermark = Some(v)),
            "last_frame" => text(line, &key, &value).map(|v| item.last_frame = Some(v)),
            "audio" => boolean(line, &key, &value).map(|v| item.audio = Some(v)),
            "negative_prompt" => text(line, &key, &value).map(|v| item.negative_prompt = Some(v)),
            "public_figure_threshold" => text(line, &key, &value).and_then(|v| {
                let lower = v.trim().to_ascii_lowercase();
                match lower.as_str() {
                    "auto" | "low" => {
                        item.public_figure_threshold = Some(lower);
                        Ok(())
                    }
                    _ => Err(LineError::new(line, &key, v, "must be auto or low")),
                }
            }),
            "output" => text(line, &key, &value).and_then(|v| check_output(line, &v)).map(|v| item.output = Some(v)),
            _ => Err(LineError::new(
                line,
                &key,
                value_text(&value),
                format!("unknown key; the keys are: {}", KEYS.join(", ")),
            )),
        };
        if let Err(e) = result {
            errors.push(e);
        }
    }
    match image {
        Some(image) => item.image = image,
        None => errors.push(LineError::new(line, "image", "", "is required: an https:// URL or a local image file")),
    }
    if errors.is_empty() {
        Ok(item)
    } else {
        Err(errors)
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text(line: usize, key: &str, value: &Value) -> Result<String, LineError> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        Value::String(s) => Err(LineError::new(line, key, s, "must not be empty (leave the key out instead)")),
        other => Err(LineError::new(line, key, other, "must be a string")),
    }
}

fn number(line: usize, key: &str, value: &Value) -> Result<u64, LineError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| LineError::new(line, key, value_text(value), "must be a whole number, 0 or more"))
}

fn boolean(line: usize, key: &str, value: &Value) -> Result<bool, LineError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(LineError::new(line, key, s, "must be true or false")),
        },
        Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
        other => Err(LineError::new(line, key, other, "must be true or false")),
    }
}

/// An output name stays inside the output folder: relative, no `..`, no control characters.
fn check_output(line: usize, name: &str) -> Result<String, LineError> {
    let path = Path::new(name);
    let inside = path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside || name.chars().any(char::is_control) || name.ends_with('/') {
        return Err(LineError::new(line, "output", name, "must be a file name inside --out-dir (relative, no ..)"));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn csv_and_json_lines_read_the_same_item() {
        let csv = "image,prompt,duration,watermark,output\nhttps://e.com/a.jpg,\"a cat, yawning\",10,yes,a.mp4\n";
        let jsonl = r#"{"image":"https://e.com/a.jpg","prompt":"a cat, yawning","duration":10,"watermark":true,"output":"a.mp4"}"#;
        let (a, e1) = parse(csv, Format::Csv);
        let (b, e2) = parse(jsonl, Format::JsonLines);
        assert!(e1.is_empty() && e2.is_empty(), "{e1:?} {e2:?}");
        assert_eq!(a[0].identity(), b[0].identity());
        assert_eq!((a[0].line, b[0].line), (2, 1));
    }

    #[test]
    fn an_unknown_key_names_line_and_key() {
        let (_, errors) =
            parse("{\"image\":\"https://e.com/a.jpg\"}\n\n{\"image\":\"x\",\"colour\":\"red\"}\n", Format::JsonLines);
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].field.as_str()), (3, "colour"));
        assert!(errors[0].to_string().starts_with("line 3: colour \"red\": unknown key"), "{}", errors[0]);
    }

    #[test]
    fn every_broken_rule_is_reported_not_just_the_first() {
        let (_, errors) = parse("{\"duration\":\"soon\",\"watermark\":\"maybe\"}\n", Format::JsonLines);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["duration", "watermark", "image"]);
    }

    #[test]
    fn an_output_must_stay_inside_the_folder() {
        for bad in ["../x.mp4", "/tmp/x.mp4", "a/../../x.mp4"] {
            let line = format!("{{\"image\":\"https://e.com/a.jpg\",\"output\":{bad:?}}}");
            let (_, errors) = parse(&line, Format::JsonLines);
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }

    fn field() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ,.\"'é:/_-]{1,30}".prop_filter("not blank", |s| !s.trim().is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_parses_without_panicking(text in "\\PC{0,300}") {
            let _ = parse(&text, Format::JsonLines);
            let _ = parse(&text, Format::Csv);
        }

        #[test]
        fn an_item_written_as_csv_or_json_lines_reads_back_the_same(
            image in field(), prompt in proptest::option::of(field()), duration in proptest::option::of(0u32..100),
            seed in proptest::option::of(any::<u64>()), watermark in proptest::option::of(any::<bool>()),
        ) {
            let trimmed = |s: &String| s.trim().to_string();
            let mut object = serde_json::Map::new();
            object.insert("image".into(), Value::from(trimmed(&image)));
            let mut header = vec!["image"];
            let mut cells = vec![trimmed(&image)];
            if let Some(p) = &prompt { object.insert("prompt".into(), Value::from(trimmed(p))); header.push("prompt"); cells.push(trimmed(p)); }
            if let Some(d) = duration { object.insert("duration".into(), Value::from(d)); header.push("duration"); cells.push(d.to_string()); }
            if let Some(s) = seed { object.insert("seed".into(), Value::from(s)); header.push("seed"); cells.push(s.to_string()); }
            if let Some(w) = watermark { object.insert("watermark".into(), Value::from(w)); header.push("watermark"); cells.push(w.to_string()); }
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(&header).unwrap();
            writer.write_record(&cells).unwrap();
            let csv_text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let json_text = Value::Object(object).to_string();

            let (from_csv, e1) = parse(&csv_text, Format::Csv);
            let (from_json, e2) = parse(&json_text, Format::JsonLines);
            prop_assert!(e1.is_empty() && e2.is_empty(), "{:?} {:?}", e1, e2);
            prop_assert_eq!(from_csv.len(), 1);
            prop_assert_eq!(from_csv[0].identity(), from_json[0].identity());
            prop_assert_eq!(&from_json[0].image, &trimmed(&image));
            prop_assert_eq!(from_json[0].duration, duration);
            prop_assert_eq!(from_json[0].seed, seed);
        }
    }
}
