//! What every route shares: the settings, the model holder, the metrics, the in-flight count and the OpenAPI
//! document rendered once at start.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::holder::Holder;
use crate::metrics::Metrics;
use crate::openapi;
use crate::settings::Settings;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub holder: Arc<Holder>,
    pub metrics: Arc<Metrics>,
    pub in_flight: AtomicUsize,
    pub started_at: SystemTime,
    pub started: Instant,
    pub openapi: String,
}

impl AppState {
    pub fn new(settings: Settings) -> Self {
        let settings = Arc::new(settings);
        let metrics = Arc::new(Metrics::default());
        let holder = Arc::new(Holder::new(settings.clone(), metrics.clone()));
        let openapi = openapi::document(&settings.variant, settings.max_batch_items);
        Self {
            settings,
            holder,
            metrics,
            in_flight: AtomicUsize::new(0),
            started_at: SystemTime::now(),
            started: Instant::now(),
            openapi,
        }
    }
}
