//! Encoded bytes -> RGB pixels with the contract's limits: the pixel count and aspect ratio are read from the
//! header and checked before a single pixel is decoded (decompression bombs get 413 at no cost); anything
//! that is not a readable JPEG, PNG or WebP is a 400.

use std::io::Cursor;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use image::ImageFormat;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use crate::errors::ApiError;

/// uint8 RGB, row-major (H, W, 3): what the fused graph takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_image_pixels: u64,
    pub max_aspect_ratio: f64,
}

/// Standard alphabet, canonical padding required, non-zero trailing bits tolerated (as Python's b64decode).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64, tolerating a `data:image/...;base64,` prefix and line breaks or other whitespace.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, ApiError> {
    let text = match (text.starts_with("data:"), text.find(',')) {
        (true, Some(comma)) => &text[comma + 1..],
        _ => text,
    };
    match BASE64.decode(text) {
        Ok(bytes) => Ok(bytes),
        Err(first) => {
            if !text.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(base64_error(&first));
            }
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            BASE64.decode(compact).map_err(|e| base64_error(&e))
        }
    }
}

fn base64_error(error: &base64::DecodeError) -> ApiError {
    let reason = match error {
        base64::DecodeError::InvalidByte(offset, _) => {
            format!("invalid character at offset {offset}")
        }
        base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
            "incorrect padding".into()
        }
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("invalid last symbol at offset {offset}")
        }
    };
    ApiError::invalid_base64(format!("the image field is not valid base64: {reason}"))
}

fn check_size(width: usize, height: usize, limits: &Limits) -> Result<(), ApiError> {
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_image_pixels {
        return Err(ApiError::image_too_large(format!(
            "image of {width}x{height} = {pixels} pixels exceeds the limit of {} (MAX_IMAGE_PIXELS)",
            limits.max_image_pixels
        )));
    }
    let (long, short) = (width.max(height) as f64, width.min(height) as f64);
    if width < 1 || height < 1 || long / short > limits.max_aspect_ratio {
        return Err(ApiError::invalid_image(format!(
            "image of {width}x{height} has an aspect ratio above {} (MAX_ASPECT_RATIO)",
            trim_float(limits.max_aspect_ratio)
        )));
    }
    Ok(())
}

fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

fn unreadable() -> ApiError {
    ApiError::invalid_image("the bytes are not a JPEG, PNG or WebP image that can be read")
}

/// Encoded JPEG/PNG/WebP bytes -> RGB pixels; limits checked from the header first.
pub fn decode_image(data: &[u8], limits: &Limits) -> Result<Pixels, ApiError> {
    if data.is_empty() {
        return Err(ApiError::invalid_image("the image is empty (0 bytes)"));
    }
    match image::guess_format(data) {
        Ok(ImageFormat::Jpeg) => decode_jpeg(data, limits),
        Ok(format @ (ImageFormat::Png | ImageFormat::WebP)) => decode_other(data, format, limits),
        _ => Err(unreadable()),
    }
}

fn decode_jpeg(data: &[u8], limits: &Limits) -> Result<Pixels, ApiError> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(|_| unreadable())?;
    let (width, height) = decoder.dimensions().ok_or_else(unreadable)?;
    check_size(width, height, limits)?;
    let rgb = decoder
        .decode()
        .map_err(|_| ApiError::invalid_image("the JPEG image is truncated or corrupt"))?;
    if rgb.len() != width * height * 3 {
        return Err(ApiError::invalid_image(
            "the JPEG image is truncated or corrupt",
        ));
    }
    Ok(Pixels {
        width,
        height,
        data: rgb,
    })
}

fn decode_other(data: &[u8], format: ImageFormat, limits: &Limits) -> Result<Pixels, ApiError> {
    let name = if format == ImageFormat::Png {
        "PNG"
    } else {
        "WEBP"
    };
    let reader = || {
        let mut reader = image::ImageReader::with_format(Cursor::new(data), format);
        reader.no_limits(); // our own pixel limit, from the header, replaces the crate's allocation limit
        reader
    };
    let (width, height) = reader().into_dimensions().map_err(|_| unreadable())?;
    check_size(width as usize, height as usize, limits)?;
    let decoded = reader().decode().map_err(|_| {
        ApiError::invalid_image(format!("the {name} image is truncated or corrupt"))
    })?;
    let rgb = decoded.into_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    Ok(Pixels {
        width,
        height,
        data: rgb.into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_image_pixels: 50_000_000,
        max_aspect_ratio: 20.0,
    };

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image =
            image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    /// A valid PNG header announcing width x height, with almost no data: a decompression bomb's header.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut real = png(1, 1);
        real[16..20].copy_from_slice(&width.to_be_bytes());
        real[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&real[12..29]);
        real[29..33].copy_from_slice(&crc.to_be_bytes());
        real
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= byte as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn base64_plain_data_url_and_whitespace() {
        assert_eq!(decode_base64("QUJD").unwrap(), b"ABC");
        assert_eq!(decode_base64("data:image/png;base64,QUJD").unwrap(), b"ABC");
        assert_eq!(decode_base64("QU\nJD\r\n").unwrap(), b"ABC");
        assert_eq!(decode_base64("QR==").unwrap(), b"A");
    }

    #[test]
    fn base64_errors_are_400_invalid_base64() {
        for bad in ["this is not base64!", "QUJDR", "QUI", "%%%", "QQ=Q"] {
            let error = decode_base64(bad).unwrap_err();
            assert_eq!((error.status, error.code), (400, "invalid_base64"), "{bad}");
        }
    }

    #[test]
    fn decodes_png_to_rgb() {
        let pixels = decode_image(&png(5, 3), &LIMITS).unwrap();
        assert_eq!((pixels.width, pixels.height, pixels.data.len()), (5, 3, 45));
        assert_eq!(&pixels.data[3..6], &[1, 0, 7]);
    }

    #[test]
    fn pixel_limit_is_read_from_the_header() {
        let error = decode_image(&png_header(20_000, 20_000), &LIMITS).unwrap_err();
        assert_eq!((error.status, error.code), (413, "image_too_large"));
        let tight = Limits {
            max_image_pixels: 14,
            ..LIMITS
        };
        assert_eq!(decode_image(&png(5, 3), &tight).unwrap_err().status, 413);
    }

    #[test]
    fn slivers_are_refused() {
        let error = decode_image(&png(2000, 1), &LIMITS).unwrap_err();
        assert_eq!((error.status, error.code), (400, "invalid_image"));
        assert!(error.message.contains("MAX_ASPECT_RATIO"));
    }

    #[test]
    fn garbage_empty_and_truncated_are_400() {
        let full = png(64, 64);
        for data in [
            &b""[..],
            b"\x00\x01not an image",
            b"GIF89a....",
            &full[..full.len() / 2],
        ] {
            let error = decode_image(data, &LIMITS).unwrap_err();
            assert_eq!((error.status, error.code), (400, "invalid_image"));
        }
    }

    /// The repository's photo, when the crate sits in the serving-lab tree.
    fn repo_jpeg() -> Option<Vec<u8>> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../images/photo_small.jpg"
        ))
        .ok()
    }

    #[test]
    fn jpeg_decodes_and_its_header_is_checked_before_decoding() {
        let Some(jpeg) = repo_jpeg() else { return };
        let pixels = decode_image(&jpeg, &LIMITS).unwrap();
        assert_eq!(pixels.data.len(), pixels.width * pixels.height * 3);
        // The same file with its baseline frame header claiming 60000x60000.
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut bomb = jpeg.clone();
        bomb[sof + 5..sof + 7].copy_from_slice(&60_000u16.to_be_bytes());
        bomb[sof + 7..sof + 9].copy_from_slice(&60_000u16.to_be_bytes());
        let error = decode_image(&bomb, &LIMITS).unwrap_err();
        assert_eq!((error.status, error.code), (413, "image_too_large"));
        let error = decode_image(&jpeg[..jpeg.len() / 3], &LIMITS).unwrap_err();
        assert_eq!((error.status, error.code), (400, "invalid_image"));
    }
}
