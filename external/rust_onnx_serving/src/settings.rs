//! Every environment variable the service reads, with the names and defaults of `.env.example` (the Python
//! variants' serving_core settings), read once at start. Names are matched case-insensitively, as
//! pydantic-settings does; unknown variables are ignored; a malformed value stops the service with a message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 8003;
pub const DEFAULT_ONNX_MODEL: &str = "build/artifacts/fused.optimized.onnx";
pub const CARD_FILE: &str = "model.card.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub variant: String,
    pub host: String,
    pub port: u16,
    /// actix worker threads (each an event loop); also the number of ONNX Runtime sessions, so that
    /// WORKERS=2 runs two inferences at once like two Python worker processes.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    pub inter_op_threads: usize,
    /// inference calls at once per worker (sessions = workers x this).
    pub inference_concurrency: usize,
    /// image decodes at once per worker.
    pub decode_concurrency: usize,
    pub onnx_model: PathBuf,
    /// None: `model.card.json` beside the artifact.
    pub model_card: Option<PathBuf>,
    pub top_k: usize,
    pub max_body_bytes: usize,
    pub max_image_pixels: u64,
    pub max_aspect_ratio: f64,
    pub max_batch_items: usize,
    pub warmup: bool,
    pub warmup_iterations: usize,
    /// None or empty: admin endpoints disabled.
    pub admin_token: Option<String>,
    /// /predict* requests in progress per worker before 503 (0: no limit).
    pub max_in_flight: usize,
    pub jpeg_draft: bool,
    pub graceful_timeout: u64,
    /// Seconds an idle keep-alive connection stays open (serving_core/settings.py says why 75).
    pub keep_alive_timeout: u64,
    pub log_level: LogLevel,
    /// Where libonnxruntime is: a library file or a folder holding `libonnxruntime.so*`.
    pub ort_dylib_path: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            variant: "rust".into(),
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            workers: 1,
            threads: 1,
            inter_op_threads: 1,
            inference_concurrency: 1,
            decode_concurrency: 1,
            onnx_model: PathBuf::from(DEFAULT_ONNX_MODEL),
            model_card: None,
            top_k: 5,
            max_body_bytes: 20 * 1024 * 1024,
            max_image_pixels: 50_000_000,
            max_aspect_ratio: 20.0,
            max_batch_items: 32,
            warmup: true,
            warmup_iterations: 3,
            admin_token: None,
            max_in_flight: 64,
            jpeg_draft: false,
            graceful_timeout: 10,
            keep_alive_timeout: 75,
            log_level: LogLevel::Info,
            ort_dylib_path: None,
        }
    }
}

struct Reader<'a> {
    env: HashMap<String, &'a str>,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.env.get(&name.to_ascii_lowercase()).copied()
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.raw(name)
            .map(str::to_string)
            .unwrap_or_else(|| default.to_string())
    }

    fn integer<T: TryFrom<u64> + Copy>(&mut self, name: &str, default: T, min: u64, max: u64) -> T {
        let Some(text) = self.raw(name) else {
            return default;
        };
        match text.trim().parse::<u64>() {
            Ok(value) if value >= min && value <= max => T::try_from(value).unwrap_or(default),
            Ok(value) => {
                self.problems
                    .push(format!("{name}={value}: must be between {min} and {max}"));
                default
            }
            Err(_) => {
                self.problems
                    .push(format!("{name}={text:?}: not a whole number"));
                default
            }
        }
    }

    fn float(&mut self, name: &str, default: f64, min: f64) -> f64 {
        let Some(text) = self.raw(name) else {
            return default;
        };
        match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() && value >= min => value,
            _ => {
                self.problems
                    .push(format!("{name}={text:?}: must be a number >= {min}"));
                default
            }
        }
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(text) = self.raw(name) else {
            return default;
        };
        match parse_bool(text) {
            Some(value) => value,
            None => {
                self.problems.push(format!(
                    "{name}={text:?}: not a boolean (true/false, 1/0, yes/no, on/off)"
                ));
                default
            }
        }
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.raw(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    }
}

/// The spellings pydantic accepts for a boolean.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

impl Settings {
    /// The settings from the process environment.
    pub fn from_env() -> Result<Self, String> {
        let pairs: Vec<(String, String)> = std::env::vars().collect();
        Self::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The settings from (name, value) pairs; Err lists every malformed value.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let env = pairs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let mut r = Reader {
            env,
            problems: Vec::new(),
        };
        let d = Settings::default();
        const MAX: u64 = u32::MAX as u64;
        let log_level = match r.string("LOG_LEVEL", "info").to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            other => {
                r.problems.push(format!(
                    "LOG_LEVEL={other:?}: one of debug, info, warning, error"
                ));
                LogLevel::Info
            }
        };
        let settings = Settings {
            variant: r.string("VARIANT", &d.variant),
            host: r.string("HOST", &d.host),
            port: r.integer("PORT", d.port, 0, 65535),
            workers: r.integer("WORKERS", d.workers, 1, 1024),
            threads: r.integer("THREADS", d.threads, 1, 1024),
            inter_op_threads: r.integer("INTER_OP_THREADS", d.inter_op_threads, 1, 1024),
            inference_concurrency: r.integer(
                "INFERENCE_CONCURRENCY",
                d.inference_concurrency,
                1,
                1024,
            ),
            decode_concurrency: r.integer("DECODE_CONCURRENCY", d.decode_concurrency, 1, 1024),
            onnx_model: r.path("ONNX_MODEL").unwrap_or(d.onnx_model),
            model_card: r.path("MODEL_CARD"),
            top_k: r.integer("TOP_K", d.top_k, 1, MAX),
            max_body_bytes: r.integer("MAX_BODY_BYTES", d.max_body_bytes, 1, 1 << 40),
            max_image_pixels: r.integer("MAX_IMAGE_PIXELS", d.max_image_pixels, 1, u64::MAX),
            max_aspect_ratio: r.float("MAX_ASPECT_RATIO", d.max_aspect_ratio, 1.0),
            max_batch_items: r.integer("MAX_BATCH_ITEMS", d.max_batch_items, 1, MAX),
            warmup: r.boolean("WARMUP", d.warmup),
            warmup_iterations: r.integer("WARMUP_ITERATIONS", d.warmup_iterations, 1, 1000),
            admin_token: r
                .raw("ADMIN_TOKEN")
                .filter(|token| !token.is_empty())
                .map(str::to_string),
            max_in_flight: r.integer("MAX_IN_FLIGHT", d.max_in_flight, 0, MAX),
            jpeg_draft: r.boolean("JPEG_DRAFT", d.jpeg_draft),
            graceful_timeout: r.integer("GRACEFUL_TIMEOUT", d.graceful_timeout, 0, 86_400),
            keep_alive_timeout: r.integer("KEEP_ALIVE_TIMEOUT", d.keep_alive_timeout, 1, 86_400),
            log_level,
            ort_dylib_path: r.path("ORT_DYLIB_PATH"),
        };
        if r.problems.is_empty() {
            Ok(settings)
        } else {
            Err(format!("invalid settings: {}", r.problems.join("; ")))
        }
    }

    /// The model card the service reads: MODEL_CARD, or `model.card.json` beside the artifact.
    pub fn card_path(&self) -> PathBuf {
        self.model_card
            .clone()
            .unwrap_or_else(|| self.onnx_model.with_file_name(CARD_FILE))
    }

    pub fn graceful(&self) -> Duration {
        Duration::from_secs(self.graceful_timeout)
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_timeout)
    }

    /// Sessions in the pool (inference calls that may run at once).
    pub fn sessions(&self) -> usize {
        self.workers * self.inference_concurrency
    }

    /// The in-flight limit over the whole process (MAX_IN_FLIGHT is per worker); 0 = none.
    pub fn process_in_flight_limit(&self) -> usize {
        self.max_in_flight.saturating_mul(self.workers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_match_env_example() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.port, 8003);
        assert_eq!((s.workers, s.threads, s.top_k), (1, 1, 5));
        assert_eq!(s.max_body_bytes, 20_971_520);
        assert_eq!(s.max_image_pixels, 50_000_000);
        assert_eq!(s.max_aspect_ratio, 20.0);
        assert_eq!(
            (s.max_batch_items, s.max_in_flight, s.graceful_timeout),
            (32, 64, 10)
        );
        assert!(s.warmup && s.admin_token.is_none() && !s.jpeg_draft);
        assert_eq!(
            s.onnx_model,
            PathBuf::from("build/artifacts/fused.optimized.onnx")
        );
        assert_eq!(
            s.card_path(),
            PathBuf::from("build/artifacts/model.card.json")
        );
        assert_eq!(s.variant, "rust");
    }

    #[test]
    fn reads_every_name_case_insensitively() {
        let s = parse(&[
            ("PORT", "9001"),
            ("host", "0.0.0.0"),
            ("THREADS", "2"),
            ("WORKERS", "3"),
            ("ONNX_MODEL", "/a/m.onnx"),
            ("MODEL_CARD", "/b/card.json"),
            ("MAX_BODY_BYTES", "100"),
            ("MAX_IMAGE_PIXELS", "1000"),
            ("MAX_ASPECT_RATIO", "2.5"),
            ("MAX_IN_FLIGHT", "0"),
            ("MAX_BATCH_ITEMS", "4"),
            ("TOP_K", "3"),
            ("GRACEFUL_TIMEOUT", "2"),
            ("KEEP_ALIVE_TIMEOUT", "7"),
            ("WARMUP", "False"),
            ("ADMIN_TOKEN", "secret"),
            ("LOG_LEVEL", "WARNING"),
            ("ORT_DYLIB_PATH", "/lib/ort"),
        ])
        .unwrap();
        assert_eq!(
            (s.port, s.host.as_str(), s.threads, s.workers),
            (9001, "0.0.0.0", 2, 3)
        );
        assert_eq!(s.card_path(), PathBuf::from("/b/card.json"));
        assert_eq!(
            (s.max_body_bytes, s.max_image_pixels, s.max_aspect_ratio),
            (100, 1000, 2.5)
        );
        assert_eq!(
            (
                s.max_in_flight,
                s.max_batch_items,
                s.top_k,
                s.graceful_timeout,
                s.keep_alive_timeout
            ),
            (0, 4, 3, 2, 7)
        );
        assert!(!s.warmup);
        assert_eq!(s.admin_token.as_deref(), Some("secret"));
        assert_eq!(s.log_level, LogLevel::Warning);
        assert_eq!(s.sessions(), 3);
        assert_eq!(s.process_in_flight_limit(), 0);
    }

    #[test]
    fn empty_admin_token_disables_admin() {
        assert!(parse(&[("ADMIN_TOKEN", "")]).unwrap().admin_token.is_none());
    }

    #[test]
    fn booleans_in_every_spelling() {
        for (text, value) in [
            ("1", true),
            ("yes", true),
            ("ON", true),
            ("0", false),
            ("off", false),
            ("No", false),
        ] {
            assert_eq!(parse(&[("WARMUP", text)]).unwrap().warmup, value, "{text}");
        }
    }

    #[test]
    fn malformed_values_are_all_reported() {
        let error = parse(&[
            ("PORT", "70000"),
            ("THREADS", "0"),
            ("WARMUP", "maybe"),
            ("TOP_K", "x"),
        ])
        .unwrap_err();
        for name in ["PORT", "THREADS", "WARMUP", "TOP_K"] {
            assert!(error.contains(name), "{error}");
        }
        assert!(parse(&[("MAX_ASPECT_RATIO", "0.5")]).is_err());
        assert!(parse(&[("LOG_LEVEL", "loud")]).is_err());
    }
}
