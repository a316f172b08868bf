//! Around every request, as serving_core/middleware.py: a request id (echoed as X-Request-Id), the in-flight
//! limit on /predict* (503 + Retry-After at once, before reading anything), the body limit from
//! Content-Length (413 before reading), the in-flight gauge, request metrics and one JSON access-log line;
//! and a request body answered before it was all read is kept open until the answer is written (`Unread`).

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{web, Error, HttpMessage};
use futures_util::future::LocalBoxFuture;
use futures_util::Stream;

use crate::errors::ApiError;
use crate::log;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The inference routes (the native ones and their `/infer` aliases) count against MAX_IN_FLIGHT.
pub const LIMITED_PREFIXES: [&str; 2] = ["/predict", "/infer"];

/// The routes the metrics are labelled by; anything else is "unmatched".
const ROUTES: [&str; 13] = [
    "/predict",
    "/predict/",
    "/predict/batch",
    "/infer",
    "/infer/batch",
    "/health",
    "/",
    "/ready",
    "/info",
    "/metrics",
    "/admin/reload",
    "/openapi.json",
    "/docs",
];

pub fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("unmatched")
}

/// An incoming id is kept when it is 1-128 characters of [A-Za-z0-9._:-].
pub fn safe_request_id(incoming: Option<&str>) -> Option<String> {
    let id = incoming?;
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| id.to_string())
}

/// 32 hex digits, unique per process run (a counter mixed with the start time and pid).
pub fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        now ^ (u64::from(std::process::id()) << 32)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mix = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    format!(
        "{:016x}{:016x}",
        mix(seed ^ n),
        mix(seed.rotate_left(17) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    )
}

/// Decrements the in-flight count when the request ends, however it ends (a dropped connection included).
struct InFlight(Arc<AppState>);

impl InFlight {
    fn enter(state: Arc<AppState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        state.metrics.in_flight_add(1);
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.in_flight_add(-1);
    }
}

fn declared_length(request: &ServiceRequest) -> Option<usize> {
    let text = request.headers().get("content-length")?.to_str().ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<usize>().unwrap_or(usize::MAX))
}

fn refusal(state: &AppState, path: &str, request: &ServiceRequest) -> Option<ApiError> {
    let limit = state.settings.process_in_flight_limit();
    if LIMITED_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
        && limit > 0
        && state.in_flight.load(Ordering::SeqCst) >= limit
    {
        state.metrics.rejected("overloaded");
        return Some(ApiError::overloaded(state.settings.max_in_flight));
    }
    if declared_length(request).is_some_and(|n| n > state.settings.max_body_bytes) {
        state.metrics.rejected("body_too_large");
        return Some(ApiError::payload_too_large(state.settings.max_body_bytes));
    }
    None
}

/// The request body, read by the handler through this handle while the middleware keeps another.
///
/// actix-http decides how to close when the response has been written. A request body still unread then and
/// still referenced gets `Connection: close` and a lingering close: what the client still sends is read and
/// dropped until it closes or `client_disconnect_timeout` (server.rs) passes, so a client that sends all
/// before reading gets the answer instead of a reset. A chunked body the handler has already dropped is
/// instead drained to its end with no bound in bytes or time (a client that stalls holds the connection).
#[derive(Clone)]
struct Unread(Rc<RefCell<Option<Payload>>>);

impl Unread {
    /// Puts a shared handle in place of `request`'s body, if it has one.
    fn share(request: &mut ServiceRequest) -> Option<Self> {
        let payload = request.take_payload();
        if matches!(payload, Payload::None) {
            return None;
        }
        let unread = Self(Rc::new(RefCell::new(Some(payload))));
        request.set_payload(Payload::Stream {
            payload: Box::pin(unread.clone()),
        });
        Some(unread)
    }

    fn finished(&self) -> bool {
        self.0.borrow().is_none()
    }
}

impl Stream for Unread {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut slot = self.0.borrow_mut();
        let Some(payload) = slot.as_mut() else {
            return Poll::Ready(None);
        };
        let next = Pin::new(payload).poll_next(cx);
        if matches!(next, Poll::Ready(None | Some(Err(_)))) {
            *slot = None;
        }
        next
    }
}

/// A response body that holds the request body open until the last byte of the response is written.
struct HoldingBody {
    body: BoxBody,
    _unread: Unread,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

pub fn handle<S>(
    mut request: ServiceRequest,
    service: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = Error>,
    S::Future: 'static,
{
    let started = Instant::now();
    let state = request
        .app_data::<web::Data<AppState>>()
        .map(|d| d.clone().into_inner());
    let Some(state) = state else {
        let future = service.call(request);
        return Box::pin(future);
    };
    let incoming = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let request_id = safe_request_id(incoming).unwrap_or_else(new_request_id);
    let path = request.path().to_string();
    let method = request.method().to_string();
    let unread = Unread::share(&mut request);

    let outcome: LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, Error>> =
        match refusal(&state, &path, &request) {
            Some(error) => {
                let response = request.into_response(error.to_response());
                Box::pin(async move { Ok(response) })
            }
            None => {
                let guard = InFlight::enter(state.clone());
                let future = service.call(request);
                Box::pin(async move {
                    let response = future.await;
                    drop(guard);
                    response
                })
            }
        };

    Box::pin(async move {
        let mut response = outcome.await?;
        if let Some(unread) = unread.filter(|unread| !unread.finished()) {
            response = response.map_body(|_, body| {
                BoxBody::new(HoldingBody {
                    body,
                    _unread: unread,
                })
            });
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed().as_secs_f64();
        state
            .metrics
            .request(route_label(&path), &method, status, elapsed);
        log::info(
            "rust_onnx_serving.access",
            "request",
            &[
                ("request_id", request_id.as_str().into()),
                ("method", method.as_str().into()),
                ("path", path.as_str().into()),
                ("status", status.into()),
                (
                    "duration_ms",
                    crate::holder::round(elapsed * 1000.0, 3).into(),
                ),
            ],
        );
        Ok(response)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert_eq!(
            safe_request_id(Some("contract-abc.1:2_3")).as_deref(),
            Some("contract-abc.1:2_3")
        );
        assert_eq!(safe_request_id(Some("has space")), None);
        assert_eq!(safe_request_id(Some(&"a".repeat(129))), None);
        assert_eq!(safe_request_id(Some("")), None);
        let (a, b) = (new_request_id(), new_request_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn routes_are_labelled() {
        assert_eq!(route_label("/predict"), "/predict");
        assert_eq!(route_label("/predict/batch"), "/predict/batch");
        assert_eq!(route_label("/infer/batch"), "/infer/batch");
        assert_eq!(route_label("/nothing"), "unmatched");
    }
}
