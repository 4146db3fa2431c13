//! Image inputs: the checks that catch, before anything is sent, an image the service would fail
//! the task for — and an opt-in check that asks the image's host the way Runway will.
//!
//! Runway fetches a URL itself: `https://` on a domain name, at most 2,048 characters, no
//! redirect, a `Content-Type` that is really `image/jpeg|png|webp`, at most 16 MB. Inline images
//! are `data:image/jpeg|png|webp;base64,` URIs of at most 5 MB.

use std::time::Duration;

use base64::Engine;

use crate::error::Error;

/// The longest image URL Runway takes, in characters.
pub const IMAGE_URL_MAX_CHARS: usize = 2048;
/// The largest image sent inline as a data URI, in bytes once decoded.
pub const DATA_URI_MAX_BYTES: usize = 5 * 1024 * 1024;
/// The largest image Runway fetches from a URL, in bytes.
pub const IMAGE_URL_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// An image format, as its bytes show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageFormat {
    /// JPEG: accepted.
    Jpeg,
    /// PNG: accepted.
    Png,
    /// WebP: accepted.
    Webp,
    /// GIF: refused by Runway.
    Gif,
    /// BMP: refused by Runway.
    Bmp,
    /// HEIC/HEIF: refused by Runway.
    Heic,
}

impl ImageFormat {
    /// The format the first bytes of a file show, if it is one of these.
    ///
    /// ```
    /// use cometapi_runway::ImageFormat;
    /// assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
    /// assert_eq!(ImageFormat::sniff(b"GIF89a...."), Some(ImageFormat::Gif));
    /// assert_eq!(ImageFormat::sniff(b"hello"), None);
    /// ```
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(ImageFormat::Jpeg),
            [0x89, b'P', b'N', b'G', ..] => Some(ImageFormat::Png),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(ImageFormat::Webp),
            [b'G', b'I', b'F', b'8', ..] => Some(ImageFormat::Gif),
            [b'B', b'M', ..] => Some(ImageFormat::Bmp),
            [_, _, _, _, b'f', b't', b'y', b'p', brand @ ..]
                if [&b"heic"[..], b"heix", b"mif1", b"msf1", b"heim", b"heis", b"hevc", b"avif"]
                    .iter()
                    .any(|b| brand.starts_with(b)) =>
            {
                Some(ImageFormat::Heic)
            }
            _ => None,
        }
    }

    /// The media type Runway expects for it (`image/jpeg`, ...).
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Heic => "image/heic",
        }
    }

    /// Whether Runway takes it: JPEG, PNG and WebP.
    pub fn is_accepted(self) -> bool {
        matches!(self, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Webp)
    }

    /// Its usual name: `JPEG`, `GIF`, ...
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Webp => "WebP",
            ImageFormat::Gif => "GIF",
            ImageFormat::Bmp => "BMP",
            ImageFormat::Heic => "HEIC",
        }
    }

    fn from_mime(mime: &str) -> Option<ImageFormat> {
        [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp].into_iter().find(|f| f.mime() == mime)
    }
}

/// Checks one image input (`promptImage`, or a keyframe's `uri`) against Runway's rules,
/// without any network: an `https://` URL on a domain name, without credentials, at most 2,048
/// characters; or a JPEG/PNG/WebP data URI of at most 5 MB whose bytes are what it declares.
///
/// ```
/// use cometapi_runway::check_image;
/// assert!(check_image("https://example.com/cat.jpg").is_ok());
/// let err = check_image("https://203.0.113.7/cat.jpg").unwrap_err();
/// assert!(err.to_string().contains("domain name"), "{err}");
/// ```
pub fn check_image(value: &str) -> Result<(), Error> {
    check_image_field("promptImage", value)
}

pub(crate) fn check_image_field(field: &'static str, value: &str) -> Result<(), Error> {
    if value.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
        return check_data_uri(field, value);
    }
    let shown = || format!("{:?}", redact(value));
    let chars = value.chars().count();
    if chars > IMAGE_URL_MAX_CHARS {
        return Err(Error::invalid(
            field,
            shown(),
            format!("an image URL must be at most {IMAGE_URL_MAX_CHARS} characters, got {chars}"),
        ));
    }
    const RULE: &str = "must be an https:// URL or a data:image/jpeg|png|webp;base64, URI";
    let url = url::Url::parse(value).map_err(|e| Error::invalid(field, shown(), format!("{RULE} ({e})")))?;
    if url.scheme() != "https" {
        return Err(Error::invalid(field, shown(), format!("{RULE}; Runway fetches images over HTTPS only")));
    }
    match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => {}
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            return Err(Error::invalid(
                field,
                shown(),
                "an image URL must use a domain name, not an IP address (Runway refuses IP hosts)",
            ))
        }
        _ => return Err(Error::invalid(field, shown(), RULE)),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            field,
            shown(),
            "an image URL must not carry credentials (user:password@); use a signed URL instead",
        ));
    }
    Ok(())
}

fn check_data_uri(field: &'static str, value: &str) -> Result<(), Error> {
    const RULE: &str = "a data URI must be data:image/jpeg|png|webp;base64,<data>";
    let (meta, data) = value[5..].split_once(',').unwrap_or((&value[5..], ""));
    let head: String = value.chars().take(40).collect();
    let shown = || format!("{head:?}… ({} bytes)", value.len());
    let Some(mime) = meta.strip_suffix(";base64") else {
        return Err(Error::invalid(field, shown(), format!("{RULE} (base64-encoded)")));
    };
    let mime = mime.to_ascii_lowercase();
    let Some(declared) = ImageFormat::from_mime(&mime) else {
        return Err(Error::invalid(field, shown(), format!("{RULE}; {mime:?} is not accepted (JPEG, PNG or WebP)")));
    };
    let data = data.trim_end_matches('=');
    if data.is_empty() || !data.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
        return Err(Error::invalid(field, shown(), format!("{RULE}; the data is not base64")));
    }
    let decoded = data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1);
    if decoded > DATA_URI_MAX_BYTES {
        return Err(Error::invalid(
            field,
            shown(),
            format!(
                "an inline image must be at most 5 MB ({DATA_URI_MAX_BYTES} bytes), got {decoded}; \
                 host it and pass an https:// URL"
            ),
        ));
    }
    // The first bytes say what the image really is.
    let prefix = &data[..data.len().min(32) / 4 * 4];
    let sniffed =
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(prefix).ok().and_then(|b| ImageFormat::sniff(&b));
    match sniffed {
        Some(real) if real != declared => Err(Error::invalid(
            field,
            shown(),
            format!(
                "declares {} but its bytes are a {} image; Runway takes JPEG, PNG or WebP",
                declared.mime(),
                real.name()
            ),
        )),
        _ => Ok(()),
    }
}

/// The URL with any password replaced, for display.
fn redact(value: &str) -> String {
    match url::Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => value.to_string(),
    }
}

/// What the image's host answered to [`check_image_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageHostReport {
    /// The `Content-Type` the host declared (e.g. `image/png`).
    pub content_type: String,
    /// The `Content-Length` it declared, if any.
    pub content_length: Option<u64>,
}

/// Asks the image's host the way Runway will fetch it — a `HEAD` without the API key,
/// following no redirect — and says what Runway would refuse: a redirect, a non-2xx answer,
/// a `Content-Type` that is not really `image/jpeg|png|webp` (S3's default
/// `binary/octet-stream` included), or more than 16 MB. Opt-in: it costs one request to the
/// image's host. The URL's own rules ([`check_image`]) are checked by
/// [`ImageToVideo::build`](crate::ImageToVideo::build), not here.
///
/// ```no_run
/// # async fn run() -> Result<(), cometapi_runway::Error> {
/// let report = cometapi_runway::check_image_host("https://example.com/cat.jpg").await?;
/// println!("{} ({:?} bytes)", report.content_type, report.content_length);
/// # Ok(()) }
/// ```
pub async fn check_image_host(url: &str) -> Result<ImageHostReport, Error> {
    const FIELD: &str = "promptImage";
    let shown = format!("{:?}", redact(url));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(Error::transport)?;
    let response = http.head(url).send().await.map_err(Error::transport)?;
    let status = response.status();
    if status.is_redirection() {
        let to = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("?");
        return Err(Error::invalid(
            FIELD,
            shown,
            format!("the image host answered {status} (a redirect to {to}); Runway does not follow redirects: pass the final URL"),
        ));
    }
    if !status.is_success() {
        return Err(Error::invalid(
            FIELD,
            shown,
            format!("the image host answered {status} to HEAD; Runway needs a 2xx answer"),
        ));
    }
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ImageFormat::from_mime(&mime).is_none() {
        let got = if content_type.is_empty() {
            "no Content-Type".to_string()
        } else {
            format!("Content-Type {content_type:?}")
        };
        return Err(Error::invalid(
            FIELD,
            shown,
            format!("the image host sent {got}; Runway needs image/jpeg, image/png or image/webp (set the object's content type)"),
        ));
    }
    let content_length = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = content_length.filter(|&len| len > IMAGE_URL_MAX_BYTES) {
        return Err(Error::invalid(
            FIELD,
            shown,
            format!("the image is {len} bytes; Runway fetches at most 16 MB ({IMAGE_URL_MAX_BYTES} bytes)"),
        ));
    }
    Ok(ImageHostReport { content_type, content_length })
}
