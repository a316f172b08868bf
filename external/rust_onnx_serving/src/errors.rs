//! The one error shape of the contract, `{"error": {"code", "message"}}`, with the status codes and the
//! machine-readable codes the Python variants use (serving_core/errors.py).

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// A failure with a status and a stable code; the message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn invalid_image(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_image", message)
    }

    pub fn invalid_base64(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_base64", message)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_json", message)
    }

    pub fn invalid_multipart(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_multipart", message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "payload_too_large",
            format!("request body exceeds the limit of {limit} bytes (MAX_BODY_BYTES)"),
        )
    }

    pub fn image_too_large(message: impl Into<String>) -> Self {
        Self::new(413, "image_too_large", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "unsupported_media_type", message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(422, "validation_error", message)
    }

    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(503, "not_ready", message).with_header("retry-after", "1")
    }

    pub fn overloaded(max_in_flight: usize) -> Self {
        Self::new(
            503,
            "overloaded",
            format!("more than {max_in_flight} requests in flight on this service; retry shortly"),
        )
        .with_header("retry-after", "1")
    }

    pub fn admin_disabled() -> Self {
        Self::new(
            403,
            "admin_disabled",
            "admin endpoints are disabled: no ADMIN_TOKEN is configured",
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "unauthorized",
            "a valid 'Authorization: Bearer <ADMIN_TOKEN>' header is required",
        )
        .with_header("www-authenticate", "Bearer")
    }

    pub fn reload_failed(message: impl Into<String>) -> Self {
        Self::new(422, "reload_failed", message)
    }

    pub fn not_found() -> Self {
        Self::new(404, "not_found", "Not Found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(405, "method_not_allowed", "Method Not Allowed")
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "internal_error",
            "internal server error (details are in the service log)",
        )
    }

    /// The JSON body, as bytes.
    pub fn body(&self) -> Vec<u8> {
        body_bytes(self.code, &self.message)
    }

    pub fn to_response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = HttpResponse::build(status);
        builder.insert_header((header::CONTENT_TYPE, "application/json"));
        for (name, value) in &self.headers {
            builder.insert_header((*name, value.as_str()));
        }
        builder.body(self.body())
    }
}

pub fn body_bytes(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&Body {
        error: Detail { code, message },
    })
    .unwrap_or_default()
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response()
    }
}

/// Replace file-system paths (two or more separators) by their last component, so that error bodies never
/// reveal the layout of the machine: "/srv/a/model.onnx" -> "model.onnx".
pub fn without_paths(message: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+' | '@');
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        // A candidate token: [\w.\-+@~]* followed by at least two "/segment" parts.
        let start = i;
        let mut j = i;
        while j < chars.len() && (is_word(chars[j]) || chars[j] == '~') {
            j += 1;
        }
        let mut segments = 0;
        let mut last_start = j;
        let mut k = j;
        while k < chars.len() && chars[k] == '/' {
            let seg = k + 1;
            let mut e = seg;
            while e < chars.len() && is_word(chars[e]) {
                e += 1;
            }
            if e == seg {
                break;
            }
            segments += 1;
            last_start = seg;
            k = e;
        }
        if segments >= 2 {
            out.extend(&chars[last_start..k]);
            i = k;
        } else if j > start {
            out.extend(&chars[start..j]);
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_exactly_code_and_message() {
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::invalid_base64("bad").body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_base64", "message": "bad"}})
        );
    }

    #[test]
    fn statuses_and_codes_match_the_python_service() {
        let cases = [
            (ApiError::invalid_image("x"), 400, "invalid_image"),
            (ApiError::invalid_json("x"), 400, "invalid_json"),
            (ApiError::invalid_multipart("x"), 400, "invalid_multipart"),
            (ApiError::payload_too_large(10), 413, "payload_too_large"),
            (ApiError::image_too_large("x"), 413, "image_too_large"),
            (
                ApiError::unsupported_media_type("x"),
                415,
                "unsupported_media_type",
            ),
            (ApiError::validation("x"), 422, "validation_error"),
            (ApiError::not_ready("x"), 503, "not_ready"),
            (ApiError::overloaded(4), 503, "overloaded"),
            (ApiError::admin_disabled(), 403, "admin_disabled"),
            (ApiError::unauthorized(), 401, "unauthorized"),
            (ApiError::reload_failed("x"), 422, "reload_failed"),
            (ApiError::not_found(), 404, "not_found"),
            (ApiError::method_not_allowed(), 405, "method_not_allowed"),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status, error.code), (status, code));
        }
        assert!(ApiError::overloaded(4)
            .headers
            .iter()
            .any(|(n, v)| *n == "retry-after" && v == "1"));
        assert!(ApiError::not_ready("x")
            .headers
            .iter()
            .any(|(n, _)| *n == "retry-after"));
    }

    #[test]
    fn paths_are_reduced_to_their_last_component() {
        assert_eq!(
            without_paths("cannot open /srv/a/model.onnx now"),
            "cannot open model.onnx now"
        );
        assert_eq!(
            without_paths("build/artifacts/fused.onnx: bad"),
            "fused.onnx: bad"
        );
        assert_eq!(
            without_paths("a/b stays, x.onnx stays"),
            "a/b stays, x.onnx stays"
        );
    }

    #[test]
    fn response_carries_json_content_type_and_headers() {
        let response = ApiError::unauthorized().to_response();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer"
        );
    }
}
