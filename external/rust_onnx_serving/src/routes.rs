//! The endpoints of the predict contract. A request reads top to bottom in `predict`: query -> model ->
//! body (limit) -> decode (header limits, off the event loop) -> top_k -> one inference call -> response.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use crate::body::{self, Encoded};
use crate::decode::{self, Limits, Pixels};
use crate::errors::ApiError;
use crate::holder::round;
use crate::log;
use crate::metrics::CONTENT_TYPE;
use crate::model::{BatchOutput, Model};
use crate::openapi;
use crate::state::AppState;

type Shared = web::Data<AppState>;

#[derive(Serialize, Clone)]
pub struct ClassScore {
    pub label: String,
    pub class_index: usize,
    pub confidence: f64,
}

#[derive(Serialize, Clone, Copy)]
pub struct Timings {
    pub decode: f64,
    pub preprocess: f64,
    pub inference: f64,
    pub total: f64,
}

#[derive(Serialize)]
pub struct PredictResponse {
    pub label: String,
    pub class_index: usize,
    pub confidence: f64,
    pub top_k: Vec<ClassScore>,
    pub variant: String,
    pub model_hash: String,
    pub timings_ms: Timings,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct BatchItem {
    index: usize,
    filename: Option<String>,
    prediction: Option<PredictResponse>,
    error: Option<ErrorDetail>,
}

#[derive(Serialize)]
struct BatchResponse {
    variant: String,
    model_hash: String,
    batch_size: usize,
    succeeded: usize,
    failed: usize,
    results: Vec<BatchItem>,
    timings_ms: Timings,
}

fn json_response<T: Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(serde_json::to_vec(value).unwrap_or_default())
}

fn milliseconds(since: Instant) -> f64 {
    round(since.elapsed().as_secs_f64() * 1000.0, 3)
}

fn limits(state: &AppState) -> Limits {
    Limits {
        max_image_pixels: state.settings.max_image_pixels,
        max_aspect_ratio: state.settings.max_aspect_ratio,
    }
}

fn content_type(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The number of classes to return: the request's (1..=classes, else 422) or TOP_K capped at the classes.
pub fn resolve_top_k(
    requested: Option<u64>,
    default: usize,
    classes: usize,
) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default.min(classes)),
        Some(k) if k >= 1 && k <= classes as u64 => Ok(k as usize),
        Some(k) => Err(ApiError::validation(format!(
            "top_k must be between 1 and {classes}, got {k}"
        ))),
    }
}

/// The top `k` classes, highest first; ties keep the lower class index first (a stable sort).
pub fn scores(probabilities: &[f32], labels: &[String], k: usize) -> Vec<ClassScore> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| {
        probabilities[b]
            .partial_cmp(&probabilities[a])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    order
        .into_iter()
        .take(k)
        .map(|i| ClassScore {
            label: labels.get(i).cloned().unwrap_or_default(),
            class_index: i,
            confidence: f64::from(probabilities[i]),
        })
        .collect()
}

fn prediction(
    probabilities: &[f32],
    model: &Model,
    variant: &str,
    k: usize,
    timings: Timings,
) -> PredictResponse {
    let top = scores(probabilities, model.labels(), k);
    let best = top[0].clone();
    PredictResponse {
        label: best.label,
        class_index: best.class_index,
        confidence: best.confidence,
        top_k: top,
        variant: variant.to_string(),
        model_hash: model.model_hash().to_string(),
        timings_ms: timings,
    }
}

/// Decode on the blocking pool, at most DECODE_CONCURRENCY x WORKERS at once; (results, milliseconds).
async fn decode_off_loop(
    state: &AppState,
    items: Vec<Result<Encoded, ApiError>>,
) -> Result<(Vec<Result<Pixels, ApiError>>, f64), ApiError> {
    let _permit = state
        .holder
        .decode_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal())?;
    let limits = limits(state);
    web::block(move || {
        let started = Instant::now();
        let decoded = items
            .into_iter()
            .map(|item| item.and_then(|encoded| decode::decode_image(&encoded.data, &limits)))
            .collect::<Vec<_>>();
        (decoded, milliseconds(started))
    })
    .await
    .map_err(|_| ApiError::internal())
}

/// One inference call on the blocking pool, at most one per session at once.
async fn infer(
    state: &AppState,
    model: Arc<Model>,
    images: Vec<Pixels>,
) -> Result<BatchOutput, ApiError> {
    let _permit = state
        .holder
        .inference_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal())?;
    let outcome = web::block(move || {
        let refs: Vec<&Pixels> = images.iter().collect();
        model.predict(&refs)
    })
    .await
    .map_err(|_| ApiError::internal())?;
    outcome.map_err(|reason| {
        log::error(
            "rust_onnx_serving.predict",
            "inference failed",
            &[("reason", reason.into())],
        );
        ApiError::internal()
    })
}

pub async fn predict(
    request: HttpRequest,
    payload: web::Payload,
    state: Shared,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let query_top_k = body::query_top_k(request.query_string())?;
    let model = state.holder.require()?;
    let raw = body::read_limited(payload, state.settings.max_body_bytes).await?;
    let parsed = body::single(content_type(&request), raw, query_top_k)?;
    let (mut decoded, decode_ms) = decode_off_loop(&state, vec![Ok(parsed.image)]).await?;
    let pixels = decoded.pop().ok_or_else(ApiError::internal)??;
    let wanted = resolve_top_k(parsed.top_k, state.settings.top_k, model.labels().len())?;
    let output = infer(&state, model.clone(), vec![pixels]).await?;
    let timings = Timings {
        decode: decode_ms,
        preprocess: round(output.preprocess_ms, 3),
        inference: round(output.inference_ms, 3),
        total: milliseconds(started),
    };
    state.metrics.stages(&[
        ("decode", timings.decode),
        ("preprocess", timings.preprocess),
        ("inference", timings.inference),
        ("total", timings.total),
    ]);
    state.metrics.batch(1);
    let body = prediction(
        &output.probabilities[0],
        &model,
        &state.settings.variant,
        wanted,
        timings,
    );
    Ok(json_response(&body))
}

pub async fn predict_batch(
    request: HttpRequest,
    payload: web::Payload,
    state: Shared,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let query_top_k = body::query_top_k(request.query_string())?;
    let model = state.holder.require()?;
    let raw = body::read_limited(payload, state.settings.max_body_bytes).await?;
    let parsed = body::batch(
        content_type(&request),
        raw,
        state.settings.max_batch_items,
        query_top_k,
    )?;
    let wanted = resolve_top_k(parsed.top_k, state.settings.top_k, model.labels().len())?;
    let filenames: Vec<Option<String>> = parsed
        .images
        .iter()
        .map(|item| item.as_ref().ok().and_then(|e| e.filename.clone()))
        .collect();
    let (decoded, decode_ms) = decode_off_loop(&state, parsed.images).await?;
    let mut good = Vec::new();
    let mut slots: Vec<Result<usize, ApiError>> = Vec::with_capacity(decoded.len());
    for item in decoded {
        match item {
            Ok(pixels) => {
                slots.push(Ok(good.len()));
                good.push(pixels);
            }
            Err(error) => slots.push(Err(error)),
        }
    }
    let count = good.len();
    let (rows, preprocess_ms, inference_ms) = if good.is_empty() {
        (Vec::new(), 0.0, 0.0)
    } else {
        let output = infer(&state, model.clone(), good).await?;
        state.metrics.batch(count);
        (
            output.probabilities,
            output.preprocess_ms,
            output.inference_ms,
        )
    };
    let timings = Timings {
        decode: decode_ms,
        preprocess: round(preprocess_ms, 3),
        inference: round(inference_ms, 3),
        total: milliseconds(started),
    };
    let variant = &state.settings.variant;
    let results: Vec<BatchItem> = slots
        .into_iter()
        .zip(filenames)
        .enumerate()
        .map(|(index, (slot, filename))| match slot {
            Ok(row) => BatchItem {
                index,
                filename,
                prediction: Some(prediction(&rows[row], &model, variant, wanted, timings)),
                error: None,
            },
            Err(e) => BatchItem {
                index,
                filename,
                prediction: None,
                error: Some(ErrorDetail {
                    code: e.code,
                    message: e.message,
                }),
            },
        })
        .collect();
    state.metrics.stages(&[
        ("decode", timings.decode),
        ("preprocess", timings.preprocess),
        ("inference", timings.inference),
        ("total", timings.total),
    ]);
    let failed = results.len() - count;
    Ok(json_response(&BatchResponse {
        variant: variant.clone(),
        model_hash: model.model_hash().to_string(),
        batch_size: count,
        succeeded: count,
        failed,
        results,
        timings_ms: timings,
    }))
}

pub async fn health() -> HttpResponse {
    json_response(&json!({"status": "ok"}))
}

pub async fn ready(state: Shared) -> Result<HttpResponse, ApiError> {
    let model = state.holder.require()?;
    Ok(json_response(&json!({
        "ready": true,
        "variant": state.settings.variant,
        "model_hash": model.model_hash(),
    })))
}

fn versions(runtime_version: Option<&Value>) -> Value {
    json!({
        "rust": env!("VERSION_RUSTC"),
        "rust-onnx-serving": env!("CARGO_PKG_VERSION"),
        "actix-web": env!("VERSION_ACTIX_WEB"),
        "ort": env!("VERSION_ORT"),
        "image": env!("VERSION_IMAGE"),
        "zune-jpeg": env!("VERSION_ZUNE_JPEG"),
        "tokio": env!("VERSION_TOKIO"),
        "onnxruntime": runtime_version.and_then(Value::as_str).unwrap_or("not loaded"),
    })
}

pub async fn info(state: Shared) -> HttpResponse {
    let s = &state.settings;
    let model = state.holder.model();
    let runtime = match &model {
        Some(model) => model.runtime.clone(),
        None => json!({"loaded": false, "error": state.holder.load_error()}),
    };
    let uptime = state.started.elapsed().as_secs_f64();
    json_response(&json!({
        "variant": s.variant,
        "protocols": ["predict"],
        "runtime": runtime,
        "versions": versions(model.as_ref().and_then(|m| m.runtime.get("onnxruntime"))),
        "model_hash": model.as_ref().map(|m| m.model_hash().to_string()),
        "model_card": model.as_ref().map(|m| m.card.raw.clone()),
        "workers": s.workers,
        "threads": s.threads,
        "inter_op_threads": s.inter_op_threads,
        "inference_concurrency": s.inference_concurrency,
        "decode_concurrency": s.decode_concurrency,
        "max_in_flight": s.max_in_flight,
        "max_body_bytes": s.max_body_bytes,
        "max_image_pixels": s.max_image_pixels,
        "max_batch_items": s.max_batch_items,
        "jpeg_draft": false,
        "pid": std::process::id(),
        "started_at": log::timestamp(state.started_at, true),
        "uptime_seconds": round(uptime, 3).max(0.001),
        "reloads": state.holder.reloads.load(Ordering::Relaxed),
    }))
}

pub async fn metrics(state: Shared) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .body(state.metrics.render())
}

/// Constant-time comparison of the presented token with ADMIN_TOKEN.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    let mut difference = presented.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        difference |= usize::from(byte ^ presented.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

pub fn check_admin(authorization: Option<&str>, token: Option<&str>) -> Result<(), ApiError> {
    let Some(expected) = token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::admin_disabled());
    };
    let (scheme, presented) = authorization
        .unwrap_or("")
        .split_once(' ')
        .unwrap_or((authorization.unwrap_or(""), ""));
    if !scheme.eq_ignore_ascii_case("bearer")
        || !token_matches(presented.trim().as_bytes(), expected.as_bytes())
    {
        return Err(ApiError::unauthorized());
    }
    Ok(())
}

pub async fn admin_reload(request: HttpRequest, state: Shared) -> Result<HttpResponse, ApiError> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    check_admin(authorization, state.settings.admin_token.as_deref())?;
    let outcome = state.holder.reload().await?;
    Ok(json_response(&json!({
        "reloaded": true,
        "previous_model_hash": outcome.previous_model_hash,
        "model_hash": outcome.model_hash,
        "load_ms": round(outcome.load_ms, 1),
    })))
}

pub async fn openapi_document(state: Shared) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(state.openapi.clone())
}

pub async fn docs(state: Shared) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(openapi::docs_page(&state.settings.variant))
}

pub async fn not_found() -> HttpResponse {
    ApiError::not_found().to_response()
}

/// 405 with the Allow header RFC 9110 requires.
pub fn method_not_allowed(allow: &'static str) -> HttpResponse {
    ApiError::method_not_allowed()
        .with_header("allow", allow)
        .to_response()
}

/// Every route; any other method on a known path is a JSON 405, any other path a JSON 404.
pub fn configure(config: &mut web::ServiceConfig) {
    fn post<F, Args>(path: &'static str, handler: F) -> actix_web::Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        web::resource(path)
            .route(web::post().to(handler))
            .default_service(web::to(|| async { method_not_allowed("POST") }))
    }
    fn get<F, Args>(path: &'static str, handler: F) -> actix_web::Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        web::resource(path)
            .route(web::get().to(handler.clone()))
            .route(web::head().to(handler))
            .default_service(web::to(|| async { method_not_allowed("GET, HEAD") }))
    }
    config
        .service(post("/predict", predict))
        .service(post("/predict/", predict))
        .service(post("/predict/batch", predict_batch))
        .service(post("/infer", predict))
        .service(post("/infer/batch", predict_batch))
        .service(post("/admin/reload", admin_reload))
        .service(get("/health", health))
        .service(get("/", health))
        .service(get("/ready", ready))
        .service(get("/info", info))
        .service(get("/metrics", metrics))
        .service(get("/openapi.json", openapi_document))
        .service(get("/docs", docs))
        .default_service(web::to(not_found));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_resolution() {
        assert_eq!(resolve_top_k(None, 5, 10).unwrap(), 5);
        assert_eq!(resolve_top_k(None, 50, 10).unwrap(), 10);
        assert_eq!(resolve_top_k(Some(10), 5, 10).unwrap(), 10);
        assert_eq!(resolve_top_k(Some(11), 5, 10).unwrap_err().status, 422);
        assert_eq!(
            resolve_top_k(Some(u64::MAX), 5, 10).unwrap_err().status,
            422
        );
    }

    #[test]
    fn scores_are_sorted_and_stable() {
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let top = scores(&[0.1, 0.4, 0.4, 0.1], &labels, 3);
        let order: Vec<usize> = top.iter().map(|s| s.class_index).collect();
        assert_eq!(order, vec![1, 2, 0]);
        assert_eq!(top[0].label, "b");
    }

    #[test]
    fn admin_token_rules() {
        assert_eq!(check_admin(Some("Bearer x"), None).unwrap_err().status, 403);
        assert_eq!(
            check_admin(Some("Bearer x"), Some("")).unwrap_err().status,
            403
        );
        assert_eq!(check_admin(None, Some("secret")).unwrap_err().status, 401);
        assert_eq!(
            check_admin(Some("Bearer wrong"), Some("secret"))
                .unwrap_err()
                .code,
            "unauthorized"
        );
        assert_eq!(
            check_admin(Some("Basic secret"), Some("secret"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            check_admin(Some("Bearer secre"), Some("secret"))
                .unwrap_err()
                .status,
            401
        );
        assert!(check_admin(Some("Bearer secret"), Some("secret")).is_ok());
        assert!(check_admin(Some("bearer  secret "), Some("secret")).is_ok());
    }
}
