//! Image inputs: each rule Runway applies to an image is checked before anything is sent — on
//! the source image and on a last-frame keyframe alike — and the opt-in remote check
//! (`check_image_host`) asks the image's host the way Runway will fetch it, naming each refusal.
//!
//! The remote check is tested against httpmock on 127.0.0.1 over plain HTTP: it applies no URL
//! rule of its own (those are `check_image`'s), so a loopback server can stand in for the host.

mod common;

use base64::Engine;
use cometapi_runway::{
    check_image_host, Error, ImageHostReport, ImageToVideo, KeyframePosition, Model, DATA_URI_MAX_BYTES,
    IMAGE_URL_MAX_BYTES, IMAGE_URL_MAX_CHARS,
};
use common::{accepted_and_sent_as, rejected_without_sending};
use httpmock::MockServer;
use serde_json::json;

const IMAGE: &str = "https://example.com/cat.jpg";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Sends `request` and checks it went out once, with `prompt_image` as its `promptImage`.
async fn accepted_and_sent_with(request: ImageToVideo, prompt_image: &str) {
    accepted_and_sent_as(request, json!({"promptImage": prompt_image, "model": "gen3a_turbo"})).await;
}

/// `InvalidInput` on `promptImage`, for no model in particular, its rule mentioning `rule`.
#[track_caller]
fn assert_image_refused(err: &Error, rule: &str) {
    let Error::InvalidInput { field, rule: r, model, .. } = err else { panic!("not InvalidInput: {err:?}") };
    assert_eq!((*field, model.as_deref()), ("promptImage", None), "{err}");
    assert!(r.contains(rule), "rule {r:?} should mention {rule:?}");
}

/// A data URI of `len` bytes: the PNG signature, then zeros.
fn png_data_uri(len: usize) -> String {
    let mut bytes = PNG_MAGIC.to_vec();
    bytes.resize(len, 0);
    let mut uri = "data:image/png;base64,".to_string();
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut uri);
    uri
}

/// An https URL of exactly `chars` characters.
fn url_of_length(chars: usize) -> String {
    let head = "https://example.com/";
    let url = format!("{head}{}.jpg", "a".repeat(chars - head.len() - 4));
    assert_eq!(url.chars().count(), chars);
    url
}

// ------------------------------------------------------------------------------ static rules

#[tokio::test]
async fn an_http_url_is_refused_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new("http://example.com/cat.jpg")).await;
    assert_image_refused(&err, "HTTPS only");
}

#[tokio::test]
async fn an_ip_address_host_is_refused_without_sending() {
    for url in ["https://203.0.113.7/cat.jpg", "https://[2001:db8::1]/cat.jpg", "https://127.0.0.1:8443/cat.jpg"] {
        let err = rejected_without_sending(ImageToVideo::new(url)).await;
        assert_image_refused(&err, "domain name");
    }
}

#[tokio::test]
async fn credentials_in_the_url_are_refused_without_echoing_the_password() {
    let err = rejected_without_sending(ImageToVideo::new("https://alice:hunter2-secret@example.com/cat.jpg")).await;
    assert_image_refused(&err, "credentials");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn a_password_is_not_echoed_even_when_the_url_does_not_parse_or_the_keyframes_clash() {
    let unparseable = ImageToVideo::new("https://alice:hunter2@exa mple.com/x.jpg");
    let clash = ImageToVideo::from_keyframes([
        (KeyframePosition::First, "https://bob:hunter2@example.com/a.jpg"),
        (KeyframePosition::First, "https://bob:hunter2@example.com/b.jpg"),
    ]);
    for request in [unparseable, clash] {
        let err = rejected_without_sending(request).await;
        assert!(matches!(err, Error::InvalidInput { field: "promptImage", .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2") && !format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

#[tokio::test]
async fn a_url_of_2049_characters_is_refused_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new(url_of_length(IMAGE_URL_MAX_CHARS + 1))).await;
    assert_image_refused(&err, "at most 2048 characters, got 2049");
}

#[tokio::test]
async fn a_url_of_2048_characters_is_sent() {
    let url = url_of_length(IMAGE_URL_MAX_CHARS);
    accepted_and_sent_with(ImageToVideo::new(url.as_str()), &url).await;
}

#[tokio::test]
async fn a_gif_data_uri_is_refused_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new("data:image/gif;base64,R0lGODlhAQABAAAAACw=")).await;
    assert_image_refused(&err, "\"image/gif\" is not accepted");
}

#[tokio::test]
async fn a_data_uri_whose_data_is_not_base64_is_refused_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new("data:image/png;base64,iVBOR w0K!GgoAAAA")).await;
    assert_image_refused(&err, "not base64");
}

#[tokio::test]
async fn a_data_uri_just_over_5_mb_is_refused_without_sending() {
    let err = rejected_without_sending(ImageToVideo::new(png_data_uri(DATA_URI_MAX_BYTES + 1))).await;
    assert_image_refused(&err, &format!("at most 5 MB ({DATA_URI_MAX_BYTES} bytes), got {}", DATA_URI_MAX_BYTES + 1));
    assert!(err.to_string().len() < 400, "the error does not carry the image: {} bytes", err.to_string().len());
}

// Fails today: the spec's `PromptImage` string variant carries `maxLength: 2048` (the URL
// limit), so the generated type refuses any plain-string data URI over 2,048 characters — an
// image over ~1.5 KB — with "rejected by the spec's schema". Un-ignore once the spec drops it.
#[tokio::test]
async fn a_data_uri_of_exactly_5_mb_is_sent() {
    let uri = png_data_uri(DATA_URI_MAX_BYTES);
    accepted_and_sent_with(ImageToVideo::new(uri.as_str()), &uri).await;
}

#[tokio::test]
async fn a_data_uri_of_exactly_5_mb_is_sent_as_a_keyframe() {
    let uri = png_data_uri(DATA_URI_MAX_BYTES);
    let request = ImageToVideo::new(IMAGE).last_frame(uri.as_str()).model(Model::VEO3_1);
    let body = json!({"promptImage": [{"uri": IMAGE, "position": "first"}, {"uri": uri, "position": "last"}],
                      "model": "veo3.1"});
    accepted_and_sent_as(request, body).await;
}

#[tokio::test]
async fn a_data_uri_declaring_png_whose_bytes_are_a_gif_is_refused_naming_gif() {
    let mut uri = "data:image/png;base64,".to_string();
    base64::engine::general_purpose::STANDARD.encode_string(b"GIF89a\x01\0\x01\0\x80\0\0\xff\xff\xff", &mut uri);
    let err = rejected_without_sending(ImageToVideo::new(uri)).await;
    assert_image_refused(&err, "declares image/png but its bytes are a GIF image");
}

#[tokio::test]
async fn every_image_rule_applies_to_a_last_frame_too() {
    let mut gif_as_png = "data:image/png;base64,".to_string();
    base64::engine::general_purpose::STANDARD.encode_string(b"GIF89a\x01\0\x01\0\x80\0\0", &mut gif_as_png);
    let broken = [
        ("http://example.com/last.jpg".to_string(), "HTTPS only"),
        ("https://203.0.113.7/last.jpg".to_string(), "domain name"),
        ("https://[2001:db8::1]/last.jpg".to_string(), "domain name"),
        ("https://alice:hunter2@example.com/last.jpg".to_string(), "credentials"),
        (url_of_length(IMAGE_URL_MAX_CHARS + 1), "at most 2048 characters"),
        ("data:image/gif;base64,R0lGODlhAQABAAAAACw=".to_string(), "is not accepted"),
        ("data:image/png;base64,!!!!".to_string(), "not base64"),
        (png_data_uri(DATA_URI_MAX_BYTES + 1), "at most 5 MB"),
        (gif_as_png, "a GIF image"),
    ];
    for (last, rule) in broken {
        // veo3.1 takes a last frame: only the image can be at fault.
        let request = ImageToVideo::new(IMAGE).last_frame(last).model(Model::VEO3_1);
        let err = rejected_without_sending(request).await;
        assert_image_refused(&err, rule);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

// ---------------------------------------------------------------------- remote check (HEAD)

/// A host answering `HEAD /cat.png` with `status` and these headers, and only when the request
/// carries no `authorization` header (the check never sends the key).
async fn image_host<'a>(server: &'a MockServer, status: u16, headers: &[(&str, &str)]) -> httpmock::Mock<'a> {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    server
        .mock_async(|when, then| {
            when.method("HEAD").path("/cat.png").header_missing("authorization");
            let then = then.status(status);
            headers.into_iter().fold(then, |then, (name, value)| then.header(name, value));
        })
        .await
}

/// Runs the remote check against `server`'s `/cat.png`; the host must have been asked once.
async fn check(server: &MockServer, host: &httpmock::Mock<'_>) -> Result<ImageHostReport, Error> {
    let result = check_image_host(&server.url("/cat.png")).await;
    host.assert_calls_async(1).await;
    result
}

#[tokio::test]
async fn remote_check_refuses_a_redirect() {
    let server = MockServer::start_async().await;
    let host = image_host(&server, 302, &[("location", "https://cdn.example.com/cat.png")]).await;
    let err = check(&server, &host).await.unwrap_err();
    assert_image_refused(&err, "redirect to https://cdn.example.com/cat.png");
    assert!(err.to_string().contains("302"), "{err}");
}

#[tokio::test]
async fn remote_check_refuses_binary_octet_stream_naming_it() {
    let server = MockServer::start_async().await;
    let host = image_host(&server, 200, &[("content-type", "binary/octet-stream"), ("content-length", "1024")]).await;
    let err = check(&server, &host).await.unwrap_err();
    assert_image_refused(&err, "Content-Type \"binary/octet-stream\"");
}

#[tokio::test]
async fn remote_check_refuses_application_octet_stream() {
    let server = MockServer::start_async().await;
    let host = image_host(&server, 200, &[("content-type", "application/octet-stream")]).await;
    let err = check(&server, &host).await.unwrap_err();
    assert_image_refused(&err, "Content-Type \"application/octet-stream\"");
}

#[tokio::test]
async fn remote_check_refuses_a_404() {
    let server = MockServer::start_async().await;
    let host = image_host(&server, 404, &[("content-type", "text/html")]).await;
    let err = check(&server, &host).await.unwrap_err();
    assert_image_refused(&err, "404");
}

#[tokio::test]
async fn remote_check_refuses_an_image_over_16_mb() {
    let server = MockServer::start_async().await;
    let too_big = (IMAGE_URL_MAX_BYTES + 1).to_string();
    let host = image_host(&server, 200, &[("content-type", "image/png"), ("content-length", &too_big)]).await;
    let err = check(&server, &host).await.unwrap_err();
    assert_image_refused(&err, &format!("the image is {too_big} bytes; Runway fetches at most 16 MB"));
}

#[tokio::test]
async fn remote_check_accepts_a_small_png_and_reports_it() {
    let server = MockServer::start_async().await;
    let host = image_host(&server, 200, &[("content-type", "image/png"), ("content-length", "48213")]).await;
    let report = check(&server, &host).await.unwrap();
    assert_eq!((report.content_type.as_str(), report.content_length), ("image/png", Some(48213)));
}

#[tokio::test]
async fn remote_check_accepts_a_jpeg_content_type_with_parameters() {
    let server = MockServer::start_async().await;
    let host = image_host(&server, 200, &[("content-type", "image/jpeg; charset=binary")]).await;
    let report = check(&server, &host).await.unwrap();
    assert_eq!(report.content_type, "image/jpeg; charset=binary");
}

#[tokio::test]
async fn remote_check_sends_no_authorization_header() {
    let server = MockServer::start_async().await;
    // Anything that carried a key would match this mock instead of the image host.
    let with_key = server
        .mock_async(|when, then| {
            when.header_exists("authorization");
            then.status(500);
        })
        .await;
    let host = image_host(&server, 200, &[("content-type", "image/webp")]).await;
    check(&server, &host).await.unwrap();
    with_key.assert_calls_async(0).await;
}
