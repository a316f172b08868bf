//! Prometheus text exposition with the same families, labels and buckets as serving_core/metrics.py, so the
//! bench and the conformance suite read the Rust service like the Python ones. One process holds every
//! worker thread, so the figures are correct with several workers without any file sharing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
pub const STAGE_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];
pub const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; buckets.len()];
        }
        for (i, bound) in buckets.iter().enumerate() {
            if value <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Default)]
struct Families {
    requests: BTreeMap<(String, String, String), f64>,
    request_latency: BTreeMap<String, Histogram>,
    stage_latency: BTreeMap<String, Histogram>,
    batch_size: Histogram,
    rejected: BTreeMap<String, f64>,
    reloads: BTreeMap<String, f64>,
}

#[derive(Default)]
pub struct Metrics {
    families: Mutex<Families>,
    in_flight: AtomicI64,
    ready: AtomicBool,
}

/// Prometheus' float formatting as prometheus_client writes it: `1.0`, `0.25`, `+Inf`.
pub fn number(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if value.is_nan() {
        return "NaN".into();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Families) -> T) -> T {
        f(&mut self.families.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.with(|m| {
            *m.requests
                .entry((route.into(), method.into(), status.to_string()))
                .or_default() += 1.0;
            m.request_latency
                .entry(route.into())
                .or_default()
                .observe(&LATENCY_BUCKETS, seconds);
        });
    }

    /// Milliseconds per stage, as in the response's `timings_ms`.
    pub fn stages(&self, stages: &[(&str, f64)]) {
        self.with(|m| {
            for (stage, ms) in stages {
                m.stage_latency
                    .entry((*stage).into())
                    .or_default()
                    .observe(&STAGE_BUCKETS, ms / 1000.0);
            }
        });
    }

    pub fn batch(&self, size: usize) {
        self.with(|m| m.batch_size.observe(&BATCH_BUCKETS, size as f64));
    }

    pub fn rejected(&self, reason: &str) {
        self.with(|m| *m.rejected.entry(reason.into()).or_default() += 1.0);
    }

    pub fn reload(&self, outcome: &str) {
        self.with(|m| *m.reloads.entry(outcome.into()).or_default() += 1.0);
    }

    pub fn in_flight_add(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let pid = std::process::id().to_string();
        let (cpu, rss) = process_usage();
        let mut out = String::with_capacity(8192);
        self.with(|m| {
            header(
                &mut out,
                "serving_requests_total",
                "HTTP requests by route, method and status",
                "counter",
            );
            for ((route, method, status), value) in &m.requests {
                let labels = format!(
                    "method=\"{}\",route=\"{}\",status=\"{}\"",
                    escape(method),
                    escape(route),
                    status
                );
                sample(&mut out, "serving_requests_total", &labels, *value);
            }
            histogram_family(
                &mut out,
                "serving_request_duration_seconds",
                "Time from request start to response end",
                "route",
                &m.request_latency,
                &LATENCY_BUCKETS,
            );
            histogram_family(
                &mut out,
                "serving_stage_duration_seconds",
                "Time per pipeline stage (decode, preprocess, inference, total)",
                "stage",
                &m.stage_latency,
                &STAGE_BUCKETS,
            );
            header(
                &mut out,
                "serving_batch_size",
                "Images per inference call",
                "histogram",
            );
            histogram_samples(
                &mut out,
                "serving_batch_size",
                "",
                &m.batch_size,
                &BATCH_BUCKETS,
            );
            header(
                &mut out,
                "serving_in_flight_requests",
                "Requests being handled now",
                "gauge",
            );
            sample(
                &mut out,
                "serving_in_flight_requests",
                "",
                self.in_flight.load(Ordering::Relaxed) as f64,
            );
            header(
                &mut out,
                "serving_rejected_requests_total",
                "Requests refused before any work",
                "counter",
            );
            for (reason, value) in &m.rejected {
                sample(
                    &mut out,
                    "serving_rejected_requests_total",
                    &format!("reason=\"{}\"", escape(reason)),
                    *value,
                );
            }
            header(
                &mut out,
                "serving_model_reloads_total",
                "Model reload attempts by outcome",
                "counter",
            );
            for (outcome, value) in &m.reloads {
                sample(
                    &mut out,
                    "serving_model_reloads_total",
                    &format!("outcome=\"{}\"", escape(outcome)),
                    *value,
                );
            }
        });
        let pid_label = format!("pid=\"{pid}\"");
        header(
            &mut out,
            "serving_worker_cpu_seconds",
            "User+system CPU seconds used by each worker",
            "gauge",
        );
        sample(&mut out, "serving_worker_cpu_seconds", &pid_label, cpu);
        header(
            &mut out,
            "serving_worker_resident_memory_bytes",
            "Resident memory of each worker",
            "gauge",
        );
        sample(
            &mut out,
            "serving_worker_resident_memory_bytes",
            &pid_label,
            rss,
        );
        header(
            &mut out,
            "serving_worker_ready",
            "1 once a worker's model is loaded and warm",
            "gauge",
        );
        let ready = if self.ready.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        };
        sample(&mut out, "serving_worker_ready", &pid_label, ready);
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {}", number(value));
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {}", number(value));
    }
}

fn histogram_family(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: &BTreeMap<String, Histogram>,
    buckets: &[f64],
) {
    header(out, name, help, "histogram");
    for (value, histogram) in series {
        histogram_samples(
            out,
            name,
            &format!("{label}=\"{}\"", escape(value)),
            histogram,
            buckets,
        );
    }
}

fn histogram_samples(
    out: &mut String,
    name: &str,
    labels: &str,
    histogram: &Histogram,
    buckets: &[f64],
) {
    let prefix = if labels.is_empty() {
        String::new()
    } else {
        format!("{labels},")
    };
    for (i, bound) in buckets.iter().enumerate() {
        let count = histogram.counts.get(i).copied().unwrap_or(0);
        sample(
            out,
            &format!("{name}_bucket"),
            &format!("{prefix}le=\"{}\"", number(*bound)),
            count as f64,
        );
    }
    sample(
        out,
        &format!("{name}_bucket"),
        &format!("{prefix}le=\"+Inf\""),
        histogram.count as f64,
    );
    sample(
        out,
        &format!("{name}_count"),
        labels,
        histogram.count as f64,
    );
    sample(out, &format!("{name}_sum"), labels, histogram.sum);
}

/// (user+system CPU seconds, resident bytes) of this process, from /proc.
pub fn process_usage() -> (f64, f64) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces) start at state = field 3.
            let after = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
        })
        .unwrap_or(0.0);
    (cpu, resident_bytes() as f64)
}

pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_prometheus_client() {
        assert_eq!(number(1.0), "1.0");
        assert_eq!(number(0.0025), "0.0025");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(45_678_592.0), "45678592.0");
    }

    #[test]
    fn exposition_has_every_family_and_counts() {
        let metrics = Metrics::default();
        metrics.request("/predict", "POST", 200, 0.003);
        metrics.request("/predict", "POST", 200, 0.2);
        metrics.stages(&[
            ("decode", 1.0),
            ("preprocess", 0.0),
            ("inference", 2.0),
            ("total", 3.5),
        ]);
        metrics.batch(3);
        metrics.rejected("overloaded");
        metrics.set_ready(true);
        let text = metrics.render();
        assert!(text.contains(
            "serving_requests_total{method=\"POST\",route=\"/predict\",status=\"200\"} 2.0"
        ));
        assert!(text.contains(
            "serving_request_duration_seconds_bucket{route=\"/predict\",le=\"0.005\"} 1.0"
        ));
        assert!(text.contains(
            "serving_request_duration_seconds_bucket{route=\"/predict\",le=\"+Inf\"} 2.0"
        ));
        assert!(text
            .contains("serving_stage_duration_seconds_bucket{stage=\"decode\",le=\"0.001\"} 1.0"));
        assert!(text.contains("serving_batch_size_bucket{le=\"4.0\"} 1.0"));
        assert!(text.contains("serving_rejected_requests_total{reason=\"overloaded\"} 1.0"));
        let pid = std::process::id();
        assert!(text.contains(&format!("serving_worker_ready{{pid=\"{pid}\"}} 1.0")));
        assert!(text.contains("serving_worker_resident_memory_bytes{pid="));
        assert!(text.contains("serving_in_flight_requests 0.0"));
    }
}
