//! Every rule of the API's field table is checked before anything is sent: a broken rule is an
//! `Error::InvalidInput` naming the field, the value and the rule, and the server sees nothing.

mod common;

use cometapi_runway::{Client, Error, ImageToVideo, Ratio, ENV_API_KEY, ENV_BASE_URL};
use common::{accepted_and_sent_as, any_request, api_request, rejected_without_sending, CREATE_PATH, KEY, TASK_ID};
use httpmock::MockServer;
use serde_json::{json, Value};

const IMAGE: &str = "https://example.com/cat.jpg";

/// The error is `InvalidInput` for `field`, showing `value`, with a rule that mentions `rule`;
/// its message carries all three.
#[track_caller]
fn assert_invalid(err: &Error, field: &str, value: &str, rule: &str) {
    let Error::InvalidInput { field: f, value: v, rule: r, .. } = err else { panic!("not InvalidInput: {err:?}") };
    assert_eq!(*f, field, "{err}");
    assert!(v.contains(value), "value {v:?} should show {value:?}");
    assert!(r.contains(rule), "rule {r:?} should mention {rule:?}");
    let message = err.to_string();
    assert!(message.contains(field) && message.contains(value) && message.contains(rule), "{message}");
}

fn minimal_body(prompt_image: &str) -> Value {
    json!({"promptImage": prompt_image, "model": "gen3a_turbo"})
}

#[tokio::test]
async fn prompt_image_missing_or_empty_is_rejected_without_sending() {
    for empty in ["", "   "] {
        let err = rejected_without_sending(ImageToVideo::new(empty)).await;
        assert_invalid(&err, "promptImage", &format!("{empty:?}"), "https://");
    }
}

#[tokio::test]
async fn prompt_image_that_is_not_an_https_url_is_rejected_without_sending() {
    for url in ["http://example.com/cat.jpg", "ftp://example.com/cat.jpg", "example.com/cat.jpg", "https://", "cat.jpg"]
    {
        let err = rejected_without_sending(ImageToVideo::new(url)).await;
        assert_invalid(&err, "promptImage", url, "must be an https:// URL or a data:image/jpeg|png|webp;base64, URI");
    }
}

#[tokio::test]
async fn prompt_image_bad_data_uri_is_rejected_without_sending() {
    for uri in
        ["data:text/plain;base64,aGVsbG8=", "data:image/png;base64,", "data:image/png,rawbytes", "data:;base64,AAAA"]
    {
        let err = rejected_without_sending(ImageToVideo::new(uri)).await;
        assert_invalid(&err, "promptImage", &uri[..uri.len().min(20)], "data:image/jpeg|png|webp;base64,");
    }
}

#[tokio::test]
async fn prompt_image_https_url_and_image_data_uri_are_sent() {
    accepted_and_sent_as(ImageToVideo::new(IMAGE), minimal_body(IMAGE)).await;
    let data_uri = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    accepted_and_sent_as(ImageToVideo::new(data_uri), minimal_body(data_uri)).await;
}

#[tokio::test]
async fn model_empty_is_rejected_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new(IMAGE).model("")).await;
    assert_invalid(&err, "model", "\"\"", "non-empty");
}

#[tokio::test]
async fn model_with_spaces_is_rejected_without_sending() {
    for model in ["gen 4", " gen4_turbo", "gen4\n"] {
        let err = rejected_without_sending(ImageToVideo::new(IMAGE).model(model)).await;
        assert_invalid(&err, "model", &format!("{model:?}"), "without spaces");
    }
}

#[tokio::test]
async fn seed_above_999999999_is_rejected_without_sending() {
    for seed in [1_000_000_000, u64::MAX] {
        let err = rejected_without_sending(ImageToVideo::new(IMAGE).seed(seed)).await;
        assert_invalid(&err, "seed", &seed.to_string(), "between 0 and 999999999");
    }
}

#[tokio::test]
async fn seed_bounds_0_and_999999999_are_sent() {
    for seed in [0, 999_999_999] {
        let mut body = minimal_body(IMAGE);
        body["seed"] = json!(seed);
        accepted_and_sent_as(ImageToVideo::new(IMAGE).seed(seed), body).await;
    }
}

#[tokio::test]
async fn prompt_text_empty_is_rejected_without_sending() {
    for text in ["", "  \n\t"] {
        let err = rejected_without_sending(ImageToVideo::new(IMAGE).prompt_text(text)).await;
        assert_invalid(&err, "promptText", &format!("{text:?}"), "must not be empty");
    }
}

#[tokio::test]
async fn prompt_text_over_512_utf16_units_is_rejected_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new(IMAGE).prompt_text("a".repeat(513))).await;
    assert_invalid(&err, "promptText", "aaaa", "at most 512 UTF-16 code units, got 513");
}

#[tokio::test]
async fn prompt_text_of_512_chars_with_a_surrogate_pair_is_513_units_and_rejected_without_sending() {
    // 511 ASCII characters and one emoji: 512 characters, but 513 UTF-16 code units.
    let text = format!("{}🎬", "a".repeat(511));
    assert_eq!((text.chars().count(), text.encode_utf16().count()), (512, 513));

    let err = rejected_without_sending(ImageToVideo::new(IMAGE).prompt_text(text)).await;
    assert_invalid(&err, "promptText", "aaaa", "got 513");
}

#[tokio::test]
async fn prompt_text_of_exactly_512_utf16_units_is_sent() {
    let ascii = "a".repeat(512);
    let with_emoji = format!("{}🎬", "a".repeat(510));
    assert_eq!(with_emoji.encode_utf16().count(), 512);

    for text in [ascii, with_emoji] {
        let mut body = minimal_body(IMAGE);
        body["promptText"] = json!(text);
        accepted_and_sent_as(ImageToVideo::new(IMAGE).prompt_text(text), body).await;
    }
}

#[tokio::test]
async fn duration_other_than_5_or_10_is_rejected_for_gen3a_turbo_without_sending() {
    for seconds in [1, 4, 6, 7, 11, 15, 30] {
        let err = rejected_without_sending(ImageToVideo::new(IMAGE).duration(seconds)).await;
        assert_invalid(&err, "duration", &seconds.to_string(), "must be 5 or 10");
        assert!(err.to_string().contains("for gen3a_turbo"), "{err}");
    }
    let err = rejected_without_sending(ImageToVideo::new(IMAGE).duration(0)).await;
    assert_invalid(&err, "duration", "0", "at least 1");
}

#[tokio::test]
async fn duration_5_is_sent() {
    let mut body = minimal_body(IMAGE);
    body["duration"] = json!(5);
    accepted_and_sent_as(ImageToVideo::new(IMAGE).duration(5), body).await;
}

#[tokio::test]
async fn every_ratio_is_sent_in_its_wire_spelling() {
    // An unknown model takes any ratio of the spec's enum.
    for ratio in Ratio::ALL {
        let mut body = minimal_body(IMAGE);
        body["model"] = json!("gen9_future");
        body["ratio"] = json!(format!("{}:{}", ratio.width(), ratio.height()));
        accepted_and_sent_as(ImageToVideo::new(IMAGE).model("gen9_future").ratio(ratio), body).await;
    }
}

#[test]
fn ratio_not_among_the_eight_values_is_rejected() {
    for bad in ["16:9", "1280:721", "1920:1088", "720", "", "1280:720:1", "wide"] {
        let err = Ratio::parse(bad).unwrap_err();
        assert_invalid(&err, "ratio", &format!("{bad:?}"), "must be one of 1280:720, 720:1280");
        let rule = err.to_string();
        for r in Ratio::ALL {
            assert!(rule.contains(&r.to_string()), "{rule} should list {r}");
        }
    }
}

#[test]
fn ratio_parses_both_spellings_of_each_of_the_eight_values() {
    let wire = ["1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672", "1280:768", "768:1280"];
    for text in wire {
        let ratio = Ratio::parse(text).unwrap();
        assert_eq!(ratio.to_string(), text);
        assert_eq!(Ratio::parse(&text.replace(':', "x")).unwrap(), ratio);
    }
}

#[test]
fn http_base_url_to_a_non_loopback_host_is_refused() {
    for url in ["http://api.cometapi.com", "http://example.com:8080/", "http://10.0.0.1:9000"] {
        let err = Client::builder().api_key(KEY).base_url(url).build().unwrap_err();
        assert_invalid(&err, "base_url", url, "only allowed to loopback");
    }
}

#[test]
fn http_base_url_to_another_host_is_allowed_only_when_asked() {
    let client =
        Client::builder().api_key(KEY).base_url("http://gateway.internal:8080").allow_insecure_http(true).build();
    assert_eq!(client.unwrap().base_url(), "http://gateway.internal:8080");
}

#[test]
fn base_url_that_is_not_an_http_url_is_refused() {
    for (url, rule) in [
        ("ftp://api.cometapi.com", "not http or https"),
        ("api.cometapi.com", "not a URL"),
        ("https://api.cometapi.com/?x=1", "query or fragment"),
    ] {
        let err = Client::builder().api_key(KEY).base_url(url).build().unwrap_err();
        assert_invalid(&err, "base_url", url, rule);
    }
}

/// Tests that change the environment hold this, so they do not see each other's variables.
static ENVIRONMENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[tokio::test]
async fn missing_api_key_is_refused_before_anything_is_sent() {
    let server = MockServer::start_async().await;
    let any = any_request(&server).await;

    let missing = {
        let _env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
        std::env::remove_var(ENV_API_KEY);
        Client::builder().base_url(server.base_url()).build().unwrap_err()
    };
    let empty = Client::builder().api_key("  ").base_url(server.base_url()).build().unwrap_err();

    assert_invalid(&missing, "api_key", "(not set)", "COMETAPI_KEY");
    assert_invalid(&empty, "api_key", "\"\"", "must not be empty");
    any.assert_calls_async(0).await;
}

#[test]
fn api_key_never_appears_in_an_error() {
    let err = Client::builder().api_key("sk-secret\nvalue").base_url("https://api.cometapi.com").build().unwrap_err();
    assert_invalid(&err, "api_key", "(redacted)", "printable ASCII");
    assert!(!err.to_string().contains("sk-secret"), "{err}");
}

#[tokio::test]
async fn key_and_base_url_come_from_the_environment() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            api_request(when, "2024-11-06").method("POST").path(CREATE_PATH);
            then.status(200).json_body(json!({"id": TASK_ID}));
        })
        .await;

    let client = {
        let _env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var(ENV_API_KEY, KEY);
        std::env::set_var(ENV_BASE_URL, server.base_url());
        let client = Client::from_env();
        std::env::remove_var(ENV_API_KEY);
        std::env::remove_var(ENV_BASE_URL);
        client.unwrap()
    };
    client.create(&ImageToVideo::new(IMAGE)).await.unwrap();

    assert_eq!(client.base_url(), server.base_url());
    mock.assert_calls_async(1).await;
}
