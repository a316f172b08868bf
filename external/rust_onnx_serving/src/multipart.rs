//! A small multipart/form-data parser over a body already read (and size-limited) into memory.
//!
//! It follows what the Python service's parser (Starlette) answers: no boundary or a body that does not start
//! with it is malformed (400); a part cut off before its closing delimiter is dropped (the request then has no
//! such field: 422); only parts with a filename are files.

use crate::errors::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

/// Non-file fields accepted in one form (Starlette's max_fields in the Python service).
pub const MAX_FIELDS: usize = 16;

/// The `boundary` parameter of a Content-Type header, if any.
pub fn boundary_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty() && value.len() <= 200).then(|| value.to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn malformed(reason: &str) -> ApiError {
    ApiError::invalid_multipart(format!("malformed multipart body: {reason}"))
}

/// The `name` / `filename` parameters of a Content-Disposition value.
fn disposition(value: &str) -> (Option<String>, Option<String>) {
    let (mut name, mut filename) = (None, None);
    let mut rest = value;
    // Split on ';' outside quotes.
    let mut params = Vec::new();
    while !rest.is_empty() {
        let mut in_quotes = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ';' if !in_quotes => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        params.push(&rest[..end]);
        rest = if end < rest.len() {
            &rest[end + 1..]
        } else {
            ""
        };
    }
    for param in params.iter().skip(1) {
        if let Some((key, raw)) = param.split_once('=') {
            let raw = raw.trim();
            let unquoted = raw
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(raw);
            let text = unquoted.replace("\\\"", "\"");
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(text),
                "filename" => filename = Some(text),
                _ => {}
            }
        }
    }
    (name, filename)
}

/// Every complete part of `body`, in order. `max_files`: more file parts than this is a 400.
pub fn parse(body: &[u8], boundary: &str, max_files: usize) -> Result<Vec<Part>, ApiError> {
    let delimiter = format!("--{boundary}").into_bytes();
    if !body.starts_with(&delimiter) {
        return Err(malformed("the body does not start with the boundary"));
    }
    let separator = [b"\r\n".as_slice(), &delimiter].concat();
    let mut parts = Vec::new();
    let (mut files, mut fields) = (0usize, 0usize);
    let mut position = delimiter.len();
    loop {
        let after = &body[position..];
        if after.starts_with(b"--") {
            break; // closing delimiter
        }
        if after.is_empty() {
            break; // no closing delimiter: whatever came complete stands
        }
        // The rest of the delimiter line (transport padding allowed), then CRLF.
        let Some(line_end) = find(body, b"\r\n", position) else {
            break;
        };
        if body[position..line_end]
            .iter()
            .any(|b| *b != b' ' && *b != b'\t')
        {
            return Err(malformed("unexpected bytes after a boundary"));
        }
        let headers_start = line_end + 2;
        let Some(headers_end) = find(body, b"\r\n\r\n", headers_start) else {
            break;
        };
        let headers = std::str::from_utf8(&body[headers_start..headers_end])
            .map_err(|_| malformed("part headers are not UTF-8"))?;
        let (mut name, mut filename) = (None, None);
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                return Err(malformed("a part header line has no ':'"));
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                (name, filename) = disposition(value.trim());
            }
        }
        let data_start = headers_end + 4;
        let Some(data_end) = find(body, &separator, data_start) else {
            break;
        }; // cut off: dropped
        let Some(name) = name else {
            return Err(malformed("a part has no Content-Disposition name"));
        };
        if filename.is_some() {
            files += 1;
            if files > max_files {
                return Err(malformed(&format!("too many files (maximum {max_files})")));
            }
        } else {
            fields += 1;
            if fields > MAX_FIELDS {
                return Err(malformed(&format!(
                    "too many fields (maximum {MAX_FIELDS})"
                )));
            }
        }
        parts.push(Part {
            name,
            filename,
            data: body[data_start..data_end].to_vec(),
        });
        position = data_end + separator.len();
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])], close: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let file = filename
                .map(|f| format!("; filename=\"{f}\""))
                .unwrap_or_default();
            out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n").as_bytes(),
            );
            out.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        if close {
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
        out
    }

    #[test]
    fn boundary_plain_and_quoted() {
        assert_eq!(
            boundary_of("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary_of("multipart/form-data; Boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary_of("multipart/form-data"), None);
    }

    #[test]
    fn parses_files_and_fields_in_order() {
        let body = form(
            "xyz",
            &[
                ("file", Some("a.png"), b"\x89PNG\r\n--x"),
                ("note", None, b"hi"),
            ],
            true,
        );
        let parts = parse(&body, "xyz", 1).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].filename.as_deref(), Some("a.png"));
        assert_eq!(parts[0].data, b"\x89PNG\r\n--x");
        assert_eq!(
            (parts[1].name.as_str(), parts[1].filename.as_ref()),
            ("note", None)
        );
    }

    #[test]
    fn wrong_boundary_and_garbage_are_400() {
        let body = form("other", &[("file", Some("a.png"), b"x")], true);
        assert_eq!(parse(&body, "xyz", 1).unwrap_err().status, 400);
        let garbage: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
        assert_eq!(
            parse(&garbage, "xyz", 1).unwrap_err().code,
            "invalid_multipart"
        );
    }

    #[test]
    fn too_many_files_is_400() {
        let body = form(
            "b",
            &[("file", Some("a"), b"1"), ("file", Some("b"), b"2")],
            true,
        );
        assert_eq!(parse(&body, "b", 1).unwrap_err().status, 400);
        assert_eq!(parse(&body, "b", 2).unwrap().len(), 2);
    }

    #[test]
    fn a_part_cut_off_is_dropped() {
        let full = form("b", &[("file", Some("a.png"), &[7u8; 400])], false);
        let parts = parse(&full[..full.len() - 200], "b", 1).unwrap();
        assert!(parts.is_empty());
    }

    #[test]
    fn empty_file_is_kept_for_the_decoder_to_refuse() {
        let body = form("b", &[("file", Some("empty.png"), b"")], true);
        assert_eq!(parse(&body, "b", 1).unwrap()[0].data.len(), 0);
    }
}
