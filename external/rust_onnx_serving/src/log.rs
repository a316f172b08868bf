//! Structured logs: one JSON object per line on stderr, shaped like serving_core/jsonlog.py
//! (`ts`, `level`, `logger`, `pid`, `message`, then the extra fields; `request_id` on access lines).

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::settings::LogLevel;

static LEVEL: AtomicU8 = AtomicU8::new(1);

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warning => 2,
        LogLevel::Error => 3,
    }
}

pub fn set_level(level: LogLevel) {
    LEVEL.store(rank(level), Ordering::Relaxed);
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-12-01T09:30:56.123Z` (`with_offset`: `2026-12-01T09:30:56.123456+00:00`, as Python's isoformat).
pub fn timestamp(time: SystemTime, with_offset: bool) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() as i64;
    let (year, month, day) = civil(seconds.div_euclid(86_400));
    let rest = seconds.rem_euclid(86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    if with_offset {
        let micros = since.subsec_micros();
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{micros:06}+00:00")
    } else {
        let millis = since.subsec_millis();
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
    }
}

pub fn line(level: &str, logger: &str, message: &str, fields: &[(&str, Value)]) -> String {
    let mut entry = Map::new();
    entry.insert("ts".into(), timestamp(SystemTime::now(), false).into());
    entry.insert("level".into(), level.into());
    entry.insert("logger".into(), logger.into());
    entry.insert("pid".into(), std::process::id().into());
    entry.insert("message".into(), message.into());
    for (key, value) in fields {
        entry.insert((*key).to_string(), value.clone());
    }
    Value::Object(entry).to_string()
}

fn emit(level: LogLevel, name: &str, logger: &str, message: &str, fields: &[(&str, Value)]) {
    if rank(level) < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    let text = line(name, logger, message, fields);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

pub fn debug(logger: &str, message: &str, fields: &[(&str, Value)]) {
    emit(LogLevel::Debug, "debug", logger, message, fields);
}

pub fn info(logger: &str, message: &str, fields: &[(&str, Value)]) {
    emit(LogLevel::Info, "info", logger, message, fields);
}

pub fn warning(logger: &str, message: &str, fields: &[(&str, Value)]) {
    emit(LogLevel::Warning, "warning", logger, message, fields);
}

pub fn error(logger: &str, message: &str, fields: &[(&str, Value)]) {
    emit(LogLevel::Error, "error", logger, message, fields);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_iso() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_117_456_123);
        assert_eq!(timestamp(t, false), "2026-12-01T09:30:56.123Z");
        assert_eq!(
            timestamp(UNIX_EPOCH, true),
            "1970-01-01T00:00:00.000000+00:00"
        );
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400), false),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn lines_are_json_with_the_extra_fields() {
        let text = line(
            "info",
            "x",
            "request",
            &[("status", 200.into()), ("request_id", "abc".into())],
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["status"], 200);
        assert_eq!(value["request_id"], "abc");
        assert_eq!(value["message"], "request");
    }
}
