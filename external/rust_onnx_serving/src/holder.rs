//! Holds the model being served and swaps it atomically: a reload loads and warms a new model off the event
//! loops, then replaces one reference; requests already running finish on the model they started with, and a
//! failed load keeps the old model serving.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore};

use crate::errors::ApiError;
use crate::log;
use crate::metrics::Metrics;
use crate::model::{self, Model};
use crate::settings::Settings;

pub struct ReloadOutcome {
    pub previous_model_hash: Option<String>,
    pub model_hash: String,
    pub load_ms: f64,
}

pub struct Holder {
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    current: RwLock<Option<Arc<Model>>>,
    load_error: RwLock<Option<String>>,
    reload_lock: Mutex<()>,
    pub reloads: AtomicU64,
    /// Inference calls at once: one per session in the pool.
    pub inference_permits: Arc<Semaphore>,
    /// Decodes at once.
    pub decode_permits: Arc<Semaphore>,
}

impl Holder {
    pub fn new(settings: Arc<Settings>, metrics: Arc<Metrics>) -> Self {
        let sessions = settings.sessions();
        let decodes = settings.workers * settings.decode_concurrency;
        Self {
            settings,
            metrics,
            current: RwLock::new(None),
            load_error: RwLock::new(None),
            reload_lock: Mutex::new(()),
            reloads: AtomicU64::new(0),
            inference_permits: Arc::new(Semaphore::new(sessions)),
            decode_permits: Arc::new(Semaphore::new(decodes)),
        }
    }

    pub fn model(&self) -> Option<Arc<Model>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn load_error(&self) -> Option<String> {
        self.load_error
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The model, or 503 not_ready (with the load error, if the load failed).
    pub fn require(&self) -> Result<Arc<Model>, ApiError> {
        self.model().ok_or_else(|| {
            let reason = self
                .load_error()
                .map(|e| format!(": {e}"))
                .unwrap_or_else(|| " yet".into());
            ApiError::not_ready(format!("the model is not loaded{reason}"))
        })
    }

    fn build(settings: &Settings) -> Result<Model, String> {
        let model = model::load(settings)?;
        if settings.warmup {
            let warm_ms = model.warm_up(settings.warmup_iterations)?;
            log::info(
                "rust_onnx_serving.model",
                "model warmed up",
                &[
                    ("warmup_ms", round(warm_ms, 1).into()),
                    ("model_hash", model.model_hash().into()),
                ],
            );
        }
        Ok(model)
    }

    fn install(&self, model: Model) -> Arc<Model> {
        let model = Arc::new(model);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(model.clone());
        *self.load_error.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics.set_ready(true);
        model
    }

    /// The first load, on a thread of its own; /ready turns 200 when it is done (and warmed).
    pub fn initial_load(self: &Arc<Self>) -> std::thread::JoinHandle<()> {
        let holder = self.clone();
        std::thread::Builder::new()
            .name("model-load".into())
            .spawn(move || {
                let started = Instant::now();
                match Self::build(&holder.settings) {
                    Ok(model) => {
                        let model = holder.install(model);
                        log::info(
                            "rust_onnx_serving.model",
                            "ready",
                            &[
                                ("model_hash", model.model_hash().into()),
                                ("variant", holder.settings.variant.as_str().into()),
                                (
                                    "load_ms",
                                    round(started.elapsed().as_secs_f64() * 1000.0, 1).into(),
                                ),
                            ],
                        );
                    }
                    Err(reason) => {
                        log::error(
                            "rust_onnx_serving.model",
                            "model load failed; /ready stays 503",
                            &[("reason", reason.as_str().into())],
                        );
                        *holder.load_error.write().unwrap_or_else(|e| e.into_inner()) =
                            Some(reason);
                    }
                }
            })
            .expect("a thread for the model load")
    }

    /// Load the configured artifacts again and swap them in; Err(reload_failed) keeps the old model.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadOutcome, ApiError> {
        let _guard = self.reload_lock.lock().await;
        let previous = self.model().map(|m| m.model_hash().to_string());
        let started = Instant::now();
        let settings = self.settings.clone();
        let built = tokio::task::spawn_blocking(move || Self::build(&settings))
            .await
            .unwrap_or_else(|_| Err("the model load crashed".into()));
        match built {
            Ok(model) => {
                let model = self.install(model);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                self.metrics.reload("succeeded");
                let outcome = ReloadOutcome {
                    previous_model_hash: previous.clone(),
                    model_hash: model.model_hash().to_string(),
                    load_ms: started.elapsed().as_secs_f64() * 1000.0,
                };
                log::info(
                    "rust_onnx_serving.model",
                    "model reloaded",
                    &[
                        (
                            "previous_model_hash",
                            previous.map(Into::into).unwrap_or(serde_json::Value::Null),
                        ),
                        ("model_hash", outcome.model_hash.as_str().into()),
                    ],
                );
                Ok(outcome)
            }
            Err(reason) => {
                self.metrics.reload("failed");
                log::error(
                    "rust_onnx_serving.model",
                    "reload failed; the old model keeps serving",
                    &[("reason", reason.as_str().into())],
                );
                Err(ApiError::reload_failed(reason))
            }
        }
    }
}

pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}
