//! `--image`: a URL passes through; a local file becomes a `data:` URI, and its pixel size
//! feeds `--ratio auto`.

use std::path::Path;

use base64::Engine;
use cometapi_runway::Ratio;

use crate::{args::RatioChoice, exit::Failure};

/// Runway's limit for an image sent inline as a data URI (its docs: 5 MB; URLs may be larger).
const DATA_URI_MAX: usize = 5 * 1024 * 1024;

/// The source image, ready for the request.
pub struct Image {
    /// What goes into `promptImage`.
    pub prompt_image: String,
    /// Width and height, for a local file.
    pub size: Option<(u32, u32)>,
}

/// Reads `--image`: anything with a scheme is passed on as given (the library checks it is
/// `https://` or `data:image/...`); anything else must be a local image file.
pub fn resolve(arg: &str) -> Result<Image, Failure> {
    if has_scheme(arg) {
        return Ok(Image { prompt_image: arg.to_string(), size: None });
    }
    let path = Path::new(arg);
    let bytes = std::fs::read(path).map_err(|e| {
        let what = if e.kind() == std::io::ErrorKind::NotFound { "not found".to_string() } else { e.to_string() };
        Failure::usage(format!(
            "image file {arg}: {what}; pass an https:// URL or the path of a local JPEG, PNG or WebP file"
        ))
    })?;
    local(arg, &bytes)
}

/// A local image's bytes as a data URI, with its size.
fn local(name: &str, bytes: &[u8]) -> Result<Image, Failure> {
    let kind = imagesize::image_type(bytes).ok();
    let mime = match kind {
        Some(imagesize::ImageType::Jpeg) => "image/jpeg",
        Some(imagesize::ImageType::Png) => "image/png",
        Some(imagesize::ImageType::Webp) => "image/webp",
        _ => {
            return Err(Failure::usage(format!(
                "image file {name} is not a JPEG, PNG or WebP image; convert it, or pass an https:// URL"
            )))
        }
    };
    let size = imagesize::blob_size(bytes).map_err(|e| {
        Failure::usage(format!("image file {name}: cannot read its size ({e}); is it a complete image?"))
    })?;
    let prefix = format!("data:{mime};base64,");
    let encoded_len = prefix.len() + bytes.len().div_ceil(3) * 4;
    if encoded_len > DATA_URI_MAX {
        return Err(Failure::usage(format!(
            "image file {name} is {} bytes; sent inline it would exceed Runway's 5 MB data URI limit: \
             shrink it, or host it and pass an https:// URL",
            bytes.len()
        )));
    }
    let mut prompt_image = prefix;
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut prompt_image);
    let (w, h) = (u32::try_from(size.width).unwrap_or(u32::MAX), u32::try_from(size.height).unwrap_or(u32::MAX));
    Ok(Image { prompt_image, size: Some((w, h)) })
}

impl Image {
    /// The ratio to send: as given, closest to the file's shape for `auto`, or none.
    pub fn ratio(&self, choice: Option<RatioChoice>) -> Result<Option<Ratio>, Failure> {
        match choice {
            None => Ok(None),
            Some(RatioChoice::Fixed(r)) => Ok(Some(r)),
            Some(RatioChoice::Auto) => {
                let Some((w, h)) = self.size else {
                    return Err(Failure::usage(
                        "--ratio auto reads the size of a local image file, and --image is a URL; \
                         pass a ratio such as 1280:720 (see `cometapi-runway ratios`)",
                    ));
                };
                Ratio::closest_to(w, h).map(Some).ok_or_else(|| {
                    Failure::usage(format!("the image is {w}x{h} pixels; --ratio auto needs a non-empty image"))
                })
            }
        }
    }
}

/// `https://…`, `data:…`, `ftp://…`: a scheme of letters before `:`, longer than a drive letter.
fn has_scheme(arg: &str) -> bool {
    match arg.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a PNG: enough for its type and size.
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    #[test]
    fn urls_and_data_uris_pass_through() {
        for arg in ["https://example.com/cat.jpg", "data:image/png;base64,AAAA", "HTTP://x"] {
            let image = resolve(arg).ok().unwrap();
            assert_eq!((image.prompt_image.as_str(), image.size), (arg, None));
        }
    }

    #[test]
    fn a_local_png_becomes_a_data_uri_with_its_size() {
        let image = local("cat.png", &png(720, 1280)).ok().unwrap();
        assert!(image.prompt_image.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", image.prompt_image);
        assert_eq!(image.size, Some((720, 1280)));
        assert!(matches!(image.ratio(Some(RatioChoice::Auto)), Ok(Some(Ratio::W720H1280))));
    }

    #[test]
    fn auto_ratio_needs_a_local_file() {
        let image = resolve("https://example.com/cat.jpg").ok().unwrap();
        let err = image.ratio(Some(RatioChoice::Auto)).err().unwrap();
        assert!(err.message.contains("--ratio auto"), "{}", err.message);
    }

    #[test]
    fn other_files_are_refused_with_what_to_do() {
        let err = local("notes.txt", b"hello").err().unwrap();
        assert!(err.message.contains("not a JPEG, PNG or WebP"), "{}", err.message);
        let err = resolve("definitely/not/here.png").err().unwrap();
        assert!(err.message.contains("not found"), "{}", err.message);
    }

    #[test]
    fn windows_drive_letters_are_paths_not_schemes() {
        assert!(!has_scheme(r"C:\images\cat.png"));
        assert!(has_scheme("https://example.com"));
    }
}
