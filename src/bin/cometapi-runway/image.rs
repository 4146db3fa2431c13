//! `--image`: a URL passes through; a local file becomes a `data:` URI, and its pixel size
//! feeds `--ratio auto`.

use std::{fs::File, io::Read, path::Path};

use base64::Engine;
use cometapi_runway::{ImageFormat, Ratio, DATA_URI_MAX_BYTES};

use crate::{args::RatioChoice, exit::Failure};

/// The source image, ready for the request.
pub struct Image {
    /// What goes into `promptImage` (or a keyframe's `uri`).
    pub prompt_image: String,
    /// Width and height, for a local file.
    pub size: Option<(u32, u32)>,
}

/// Reads `--image` / `--last-frame`: anything with a scheme is passed on as given (the library
/// checks it); anything else must be a local image file, sent inline.
pub fn resolve(flag: &str, arg: &str) -> Result<Image, Failure> {
    if has_scheme(arg) {
        return Ok(Image { prompt_image: arg.to_string(), size: None });
    }
    let bytes = read_bounded(flag, arg)?;
    local(arg, &bytes)
}

/// The file's bytes, refusing one too large to inline before reading it whole: the size from the
/// file system first, and never more than the limit plus one byte read (`/dev/zero` included).
fn read_bounded(flag: &str, arg: &str) -> Result<Vec<u8>, Failure> {
    let cannot = |e: std::io::Error| {
        let what = if e.kind() == std::io::ErrorKind::NotFound { "not found".to_string() } else { e.to_string() };
        Failure::usage(format!(
            "{flag} {arg}: {what}; pass an https:// URL or the path of a local JPEG, PNG or WebP file"
        ))
    };
    let too_large = |size: String| {
        Failure::usage(format!(
            "{flag} {arg} is {size}; an image sent inline must be at most 5 MB ({DATA_URI_MAX_BYTES} bytes): \
             host it at an HTTPS URL and pass the URL instead"
        ))
    };
    let file = File::open(Path::new(arg)).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if meta.is_dir() {
        return Err(Failure::usage(format!("{flag} {arg} is a folder; pass an image file or an https:// URL")));
    }
    if meta.is_file() && meta.len() > DATA_URI_MAX_BYTES as u64 {
        return Err(too_large(format!("{} bytes", meta.len())));
    }
    let mut bytes = Vec::new();
    file.take(DATA_URI_MAX_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() > DATA_URI_MAX_BYTES {
        return Err(too_large("larger than that".to_string()));
    }
    Ok(bytes)
}

/// A local image's bytes as a data URI, with its size. The format comes from the bytes, whatever
/// the file's name says.
fn local(name: &str, bytes: &[u8]) -> Result<Image, Failure> {
    let format = match ImageFormat::sniff(bytes) {
        Some(format) if format.is_accepted() => format,
        Some(format) => {
            return Err(Failure::usage(format!(
                "image file {name} is a {} image (whatever its extension says); Runway takes JPEG, PNG or WebP: \
                 convert it, or pass an https:// URL of one",
                format.name()
            )))
        }
        None => {
            return Err(Failure::usage(format!(
                "image file {name} is not a JPEG, PNG or WebP image; convert it, or pass an https:// URL"
            )))
        }
    };
    let size = imagesize::blob_size(bytes).map_err(|e| {
        Failure::usage(format!("image file {name}: cannot read its size ({e}); is it a complete image?"))
    })?;
    let mut prompt_image = format!("data:{};base64,", format.mime());
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut prompt_image);
    let (w, h) = (u32::try_from(size.width).unwrap_or(u32::MAX), u32::try_from(size.height).unwrap_or(u32::MAX));
    Ok(Image { prompt_image, size: Some((w, h)) })
}

impl Image {
    /// The ratio to send: as given, closest to the file's shape among `candidates` for `auto`,
    /// or none.
    pub fn ratio(&self, choice: Option<RatioChoice>, candidates: &[Ratio]) -> Result<Option<Ratio>, Failure> {
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
                Ratio::closest_among(w, h, candidates.iter().copied()).map(Some).ok_or_else(|| {
                    Failure::usage(format!("the image is {w}x{h} pixels; --ratio auto needs a non-empty image"))
                })
            }
        }
    }
}

/// `https://…`, `data:…`, `ftp://…`: a scheme of letters before `:`, longer than a drive letter.
pub fn has_scheme(arg: &str) -> bool {
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
            let image = resolve("--image", arg).ok().unwrap();
            assert_eq!((image.prompt_image.as_str(), image.size), (arg, None));
        }
    }

    #[test]
    fn a_local_png_becomes_a_data_uri_with_its_size() {
        let image = local("cat.png", &png(720, 1280)).ok().unwrap();
        assert!(image.prompt_image.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", image.prompt_image);
        assert_eq!(image.size, Some((720, 1280)));
        assert!(matches!(image.ratio(Some(RatioChoice::Auto), &Ratio::ALL), Ok(Some(Ratio::W720H1280))));
    }

    #[test]
    fn auto_ratio_needs_a_local_file() {
        let image = resolve("--image", "https://example.com/cat.jpg").ok().unwrap();
        let err = image.ratio(Some(RatioChoice::Auto), &Ratio::ALL).err().unwrap();
        assert!(err.message.contains("--ratio auto"), "{}", err.message);
    }

    #[test]
    fn other_files_are_refused_with_what_to_do() {
        let err = local("notes.txt", b"hello").err().unwrap();
        assert!(err.message.contains("not a JPEG, PNG or WebP"), "{}", err.message);
        let err = resolve("--image", "definitely/not/here.png").err().unwrap();
        assert!(err.message.contains("not found"), "{}", err.message);
    }

    #[test]
    fn refused_formats_are_named_whatever_the_extension() {
        for (bytes, name) in
            [(&b"GIF89a\x01\0\x01\0"[..], "GIF"), (b"BM\0\0\0\0", "BMP"), (b"\0\0\0\x18ftypheic\0\0", "HEIC")]
        {
            let err = local("cat.png", bytes).err().unwrap();
            assert!(err.message.contains(&format!("is a {name} image")), "{}", err.message);
        }
    }

    #[test]
    fn a_file_too_large_to_inline_is_refused_before_it_is_read() {
        let dir = std::env::temp_dir().join(format!("cometapi-runway-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.png");
        let file = File::create(&big).unwrap();
        file.set_len(DATA_URI_MAX_BYTES as u64 + 1).unwrap();
        let err = resolve("--image", big.to_str().unwrap()).err().unwrap();
        assert!(err.message.contains("at most 5 MB") && err.message.contains("HTTPS URL"), "{}", err.message);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_endless_device_is_read_no_further_than_the_limit() {
        if Path::new("/dev/zero").exists() {
            let err = resolve("--image", "/dev/zero").err().unwrap();
            assert!(err.message.contains("at most 5 MB"), "{}", err.message);
        }
    }

    #[test]
    fn windows_drive_letters_are_paths_not_schemes() {
        assert!(!has_scheme(r"C:\images\cat.png"));
        assert!(has_scheme("https://example.com"));
    }
}
