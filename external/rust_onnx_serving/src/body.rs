//! Request bodies -> encoded images: the three accepted forms (JSON base64 with snake_case or camelCase keys,
//! raw `image/*` bytes, multipart field `file` / `files`), the body size limit while reading, and the same
//! 400 / 413 / 415 / 422 answers as the Python service (serving_core/decode.py and schemas.py).

use actix_web::web;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::decode::decode_base64;
use crate::errors::ApiError;
use crate::multipart;

pub const RAW_IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/jpg", "image/png", "image/webp"];
pub const SINGLE_FILE_FIELD: &str = "file";
pub const BATCH_FILE_FIELD: &str = "files";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub data: Vec<u8>,
    pub filename: Option<String>,
}

#[derive(Debug)]
pub struct Single {
    pub image: Encoded,
    pub top_k: Option<u64>,
}

#[derive(Debug)]
pub struct Batch {
    pub images: Vec<Result<Encoded, ApiError>>,
    pub top_k: Option<u64>,
}

/// The media type of a Content-Type header: lower case, without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The whole body, refused with 413 as soon as it exceeds `limit` (also for chunked bodies without a length).
/// The 413 goes out at once; what is left of the body is read and thrown away by the lingering close after it
/// (middleware.rs `Unread`), so that the client, still sending, reads the 413 instead of a reset connection.
pub async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::invalid_image("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn unsupported(media_type: &str) -> ApiError {
    let shown = if media_type.is_empty() {
        "(none)".to_string()
    } else {
        format!("'{media_type}'")
    };
    ApiError::unsupported_media_type(format!(
        "content type {shown} is not accepted; use one of application/json, multipart/form-data, image/jpeg, \
         image/png, image/webp"
    ))
}

fn parse_json(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::invalid_json("the body is not valid JSON"))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::validation(format!(
            "body: Input should be a valid dictionary or object, got {}",
            kind(&other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `top_k` / `topK`: an integer >= 1 or null. Lax like pydantic: 3.0 and "3" are 3.
fn top_k_field(map: &Map<String, Value>, problems: &mut Vec<String>) -> Option<u64> {
    let value = map.get("topK").or_else(|| map.get("top_k"))?;
    let number = match value {
        Value::Null => return None,
        Value::Bool(b) => Some(*b as u64 as f64),
        Value::Number(n) => n.as_u64().map(|v| v as f64).or_else(|| n.as_f64()),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|_| {
            s.trim()
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '+')
        }),
        _ => None,
    };
    match number {
        None => problems.push("top_k: Input should be a valid integer".into()),
        Some(v) if v.fract() != 0.0 || !v.is_finite() => problems.push(
            "top_k: Input should be a valid integer, got a number with a fractional part".into(),
        ),
        Some(v) if v < 1.0 => {
            problems.push("top_k: Input should be greater than or equal to 1".into())
        }
        Some(v) => {
            return Some(if v >= u64::MAX as f64 {
                u64::MAX
            } else {
                v as u64
            })
        }
    }
    None
}

fn extra_keys(map: &Map<String, Value>, field: &str, problems: &mut Vec<String>) {
    for key in map.keys() {
        if key != field && key != "top_k" && key != "topK" {
            problems.push(format!("{key}: Extra inputs are not permitted"));
        }
    }
}

fn finish<T>(problems: Vec<String>, value: impl FnOnce() -> T) -> Result<T, ApiError> {
    if problems.is_empty() {
        Ok(value())
    } else {
        Err(ApiError::validation(problems.join("; ")))
    }
}

fn image_string<'a>(
    value: Option<&'a Value>,
    location: &str,
    problems: &mut Vec<String>,
) -> Option<&'a str> {
    match value {
        None => problems.push(format!("{location}: Field required")),
        Some(Value::String(s)) if s.is_empty() => problems.push(format!(
            "{location}: String should have at least 1 character"
        )),
        Some(Value::String(s)) => return Some(s),
        Some(_) => problems.push(format!("{location}: Input should be a valid string")),
    }
    None
}

/// A JSON single request: `{"image": "<base64>", "top_k"|"topK": n}`.
pub fn json_single(body: &[u8]) -> Result<(String, Option<u64>), ApiError> {
    let map = parse_json(body)?;
    let mut problems = Vec::new();
    let image = image_string(map.get("image"), "image", &mut problems).map(str::to_string);
    let top_k = top_k_field(&map, &mut problems);
    extra_keys(&map, "image", &mut problems);
    finish(problems, || (image.unwrap_or_default(), top_k))
}

/// A JSON batch request: `{"images": ["<base64>", ...], "top_k"|"topK": n}`.
pub fn json_batch(body: &[u8]) -> Result<(Vec<String>, Option<u64>), ApiError> {
    let map = parse_json(body)?;
    let mut problems = Vec::new();
    let mut images = Vec::new();
    match map.get("images") {
        None => problems.push("images: Field required".into()),
        Some(Value::Array(items)) if items.is_empty() => {
            problems.push("images: List should have at least 1 item after validation, not 0".into())
        }
        Some(Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                if let Some(text) =
                    image_string(Some(item), &format!("images.{index}"), &mut problems)
                {
                    images.push(text.to_string());
                }
                if problems.len() > 10 {
                    break;
                }
            }
        }
        Some(_) => problems.push("images: Input should be a valid list".into()),
    }
    let top_k = top_k_field(&map, &mut problems);
    extra_keys(&map, "images", &mut problems);
    finish(problems, || (images, top_k))
}

fn form_files(
    content_type: &str,
    body: &[u8],
    field: &str,
    max_files: usize,
) -> Result<Vec<Encoded>, ApiError> {
    let boundary = multipart::boundary_of(content_type).ok_or_else(|| {
        ApiError::invalid_multipart("malformed multipart body: no boundary in the content type")
    })?;
    let parts = multipart::parse(body, &boundary, max_files)?;
    let files: Vec<Encoded> = parts
        .into_iter()
        .filter(|part| part.name == field && part.filename.is_some())
        .map(|part| Encoded {
            data: part.data,
            filename: part.filename,
        })
        .collect();
    if files.is_empty() {
        return Err(ApiError::validation(format!(
            "multipart body has no file field named '{field}'"
        )));
    }
    Ok(files)
}

fn check_batch_size(count: usize, max_items: usize) -> Result<(), ApiError> {
    if count > max_items {
        return Err(ApiError::validation(format!(
            "a batch holds at most {max_items} images (MAX_BATCH_ITEMS), got {count}"
        )));
    }
    Ok(())
}

/// `/predict`: `query_top_k` from the query string; a top_k in a JSON body wins over it.
pub fn single(
    content_type: Option<&str>,
    body: Vec<u8>,
    query_top_k: Option<u64>,
) -> Result<Single, ApiError> {
    let media = media_type(content_type);
    if media == "application/json" {
        let (text, top_k) = json_single(&body)?;
        drop(body);
        let data = decode_base64(&text)?;
        return Ok(Single {
            image: Encoded {
                data,
                filename: None,
            },
            top_k: top_k.or(query_top_k),
        });
    }
    if RAW_IMAGE_TYPES.contains(&media.as_str()) {
        return Ok(Single {
            image: Encoded {
                data: body,
                filename: None,
            },
            top_k: query_top_k,
        });
    }
    if media == "multipart/form-data" {
        let mut files = form_files(content_type.unwrap_or(""), &body, SINGLE_FILE_FIELD, 1)?;
        return Ok(Single {
            image: files.swap_remove(0),
            top_k: query_top_k,
        });
    }
    Err(unsupported(&media))
}

/// `/predict/batch`: JSON `images` or multipart `files`; a bad base64 item becomes that item's error.
pub fn batch(
    content_type: Option<&str>,
    body: Vec<u8>,
    max_items: usize,
    query_top_k: Option<u64>,
) -> Result<Batch, ApiError> {
    let media = media_type(content_type);
    if media == "application/json" {
        let (texts, top_k) = json_batch(&body)?;
        drop(body);
        check_batch_size(texts.len(), max_items)?;
        let images = texts
            .iter()
            .map(|text| {
                decode_base64(text).map(|data| Encoded {
                    data,
                    filename: None,
                })
            })
            .collect();
        return Ok(Batch {
            images,
            top_k: top_k.or(query_top_k),
        });
    }
    if media == "multipart/form-data" {
        let files = form_files(
            content_type.unwrap_or(""),
            &body,
            BATCH_FILE_FIELD,
            max_items + 1,
        )?;
        check_batch_size(files.len(), max_items)?;
        return Ok(Batch {
            images: files.into_iter().map(Ok).collect(),
            top_k: query_top_k,
        });
    }
    Err(unsupported(&media))
}

/// `%XX` escapes and `+` (a space) of a query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `top_k` query parameter: absent, or an integer >= 1 (else 422, checked before anything else).
pub fn query_top_k(query: &str) -> Result<Option<u64>, ApiError> {
    let mut found = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "top_k" {
            found = Some(value);
        }
    }
    let Some(text) = found else { return Ok(None) };
    let decoded = percent_decode(text);
    let text = decoded.trim();
    let digits = text.strip_prefix('+').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let value = digits.parse::<u64>().unwrap_or(u64::MAX);
        if value >= 1 {
            return Ok(Some(value));
        }
        return Err(ApiError::validation(
            "query.top_k: Input should be greater than or equal to 1",
        ));
    }
    if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) && text.len() > 1 {
        return Err(ApiError::validation(
            "query.top_k: Input should be greater than or equal to 1",
        ));
    }
    Err(ApiError::validation(
        "query.top_k: Input should be a valid integer, unable to parse string as an integer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_single_accepts_snake_and_camel_top_k() {
        assert_eq!(
            json_single(br#"{"image": "QUJD", "top_k": 2}"#).unwrap(),
            ("QUJD".into(), Some(2))
        );
        assert_eq!(
            json_single(br#"{"image": "QUJD", "topK": 3}"#).unwrap(),
            ("QUJD".into(), Some(3))
        );
        assert_eq!(
            json_single(br#"{"image": "QUJD", "topK": null}"#)
                .unwrap()
                .1,
            None
        );
        assert_eq!(
            json_single(br#"{"image": "QUJD", "top_k": 4.0}"#)
                .unwrap()
                .1,
            Some(4)
        );
        assert_eq!(
            json_single(br#"{"image": "QUJD", "top_k": "5"}"#)
                .unwrap()
                .1,
            Some(5)
        );
    }

    #[test]
    fn json_errors_400_versus_422() {
        for body in [
            &b""[..],
            b"{\"image\": \"abc",
            b"{\"image\": \"\xff\xfe\"}",
            b"\xff\xd8\xff",
        ] {
            let error = json_single(body).unwrap_err();
            assert_eq!((error.status, error.code), (400, "invalid_json"));
        }
        let nested = [
            b"{\"image\": ".as_slice(),
            &[b'['; 100_000],
            &[b']'; 100_000],
            b"}",
        ]
        .concat();
        assert_eq!(json_single(&nested).unwrap_err().status, 400);
        for body in [
            r#"{"image": 5}"#,
            r#"{"image": null}"#,
            r#"{"image": ["QUJD"]}"#,
            r#"{"image": {"data": "QUJD"}}"#,
            r#"["QUJD"]"#,
            r#""QUJD""#,
            r#"{}"#,
            r#"{"picture": "QUJD"}"#,
            r#"{"image": ""}"#,
            r#"{"image": "QUJD", "extra": 1}"#,
            r#"{"image": "QUJD", "top_k": "many"}"#,
            r#"{"image": "QUJD", "top_k": 1.5}"#,
            r#"{"image": "QUJD", "top_k": 0}"#,
            r#"{"image": "QUJD", "top_k": -2}"#,
        ] {
            let error = json_single(body.as_bytes()).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (422, "validation_error"),
                "{body}"
            );
        }
    }

    #[test]
    fn json_batch_schema() {
        assert_eq!(
            json_batch(br#"{"images": ["QQ==", "QUJD"], "topK": 1}"#)
                .unwrap()
                .0
                .len(),
            2
        );
        for body in [
            r#"{"images": []}"#,
            r#"{"images": "QQ=="}"#,
            r#"{"images": [1, 2]}"#,
            r#"{"images": [""]}"#,
        ] {
            assert_eq!(
                json_batch(body.as_bytes()).unwrap_err().status,
                422,
                "{body}"
            );
        }
    }

    #[test]
    fn batch_size_limit_and_bad_items() {
        let body = br#"{"images": ["QQ==", "QQ==", "QQ=="]}"#.to_vec();
        assert_eq!(
            batch(Some("application/json"), body.clone(), 2, None)
                .unwrap_err()
                .status,
            422
        );
        let parsed = batch(
            Some("application/json"),
            br#"{"images": ["QQ==", "%%%"]}"#.to_vec(),
            2,
            Some(1),
        )
        .unwrap();
        assert_eq!(parsed.top_k, Some(1));
        assert!(parsed.images[0].is_ok());
        assert_eq!(
            parsed.images[1].as_ref().unwrap_err().code,
            "invalid_base64"
        );
    }

    #[test]
    fn content_types() {
        for media in [
            "text/plain",
            "image/gif",
            "application/octet-stream",
            "application/xml",
            "",
        ] {
            let error =
                single(Some(media).filter(|m| !m.is_empty()), b"x".to_vec(), None).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (415, "unsupported_media_type"),
                "{media}"
            );
        }
        assert_eq!(
            batch(Some("image/png"), b"x".to_vec(), 4, None)
                .unwrap_err()
                .status,
            415
        );
        let raw = single(Some("IMAGE/PNG"), b"abc".to_vec(), Some(2)).unwrap();
        assert_eq!(
            (raw.image.data.as_slice(), raw.top_k),
            (&b"abc"[..], Some(2))
        );
        let json = single(
            Some("application/json; charset=utf-8"),
            br#"{"image": "QUJD", "top_k": 1}"#.to_vec(),
            Some(3),
        );
        assert_eq!(
            json.unwrap().top_k,
            Some(1),
            "the body's top_k wins over the query's"
        );
    }

    #[test]
    fn multipart_needs_a_boundary_and_the_field() {
        let error = single(
            Some("multipart/form-data"),
            b"--x\r\n\r\nabc".to_vec(),
            None,
        )
        .unwrap_err();
        assert_eq!((error.status, error.code), (400, "invalid_multipart"));
        let body = b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\nxx\r\n--b--\r\n";
        let error =
            single(Some("multipart/form-data; boundary=b"), body.to_vec(), None).unwrap_err();
        assert_eq!(error.status, 422);
        let body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nxx\r\n--b--\r\n";
        let parsed = single(Some("multipart/form-data; boundary=b"), body.to_vec(), None).unwrap();
        assert_eq!(
            (
                parsed.image.data.as_slice(),
                parsed.image.filename.as_deref()
            ),
            (&b"xx"[..], Some("a.png"))
        );
    }

    #[test]
    fn query_top_k_rules() {
        assert_eq!(query_top_k("").unwrap(), None);
        assert_eq!(query_top_k("top_k=3").unwrap(), Some(3));
        assert_eq!(query_top_k("a=1&top_k=%32").unwrap(), Some(2));
        assert_eq!(query_top_k("top_k=%").unwrap_err().status, 422);
        assert_eq!(
            query_top_k(&format!("top_k={}", "9".repeat(5000))).unwrap(),
            Some(u64::MAX)
        );
        for bad in ["top_k=0", "top_k=-1", "top_k=abc", "top_k=", "top_k=1.5"] {
            assert_eq!(query_top_k(bad).unwrap_err().status, 422, "{bad}");
        }
    }
}
