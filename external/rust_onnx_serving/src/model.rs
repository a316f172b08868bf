//! The fused artifact and its card: load them (with onnx_serving's checks: manifest status, CPU fingerprint,
//! interface), open ONNX Runtime sessions with onnx_serving's options, and run uint8 NHWC images through them.
//!
//! Batching as in onnx_serving/predictor.py: images of the same height and width go into one run as one
//! [N, H, W, 3] tensor; a batch of mixed sizes runs once per distinct size; rows come back in request order.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use ort::ep;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cpu;
use crate::decode::Pixels;
use crate::errors::without_paths;
use crate::settings::Settings;

pub const INPUT_NAME: &str = "image";
pub const OUTPUT_NAME: &str = "probabilities";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const PORTABLE_FILE: &str = "fused.portable.onnx";
const NCHWC_DOMAIN: &[u8] = b"com.microsoft.nchwc";
pub const MODEL_HASH_LENGTH: usize = 12;

/// What the model card says that the service needs; `raw` is the card as read, for /info.
#[derive(Debug, Clone)]
pub struct Card {
    pub labels: Vec<String>,
    pub crop_size: usize,
    pub resize_size: usize,
    pub raw: Value,
}

impl Card {
    pub fn parse(text: &str, name: &str) -> Result<Card, String> {
        let raw: Value = serde_json::from_str(text)
            .map_err(|e| format!("model card {name} is not valid JSON: {e}"))?;
        let labels: Vec<String> = raw
            .get("labels")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|l| l.as_str().map(str::to_string))
                    .collect()
            })
            .ok_or_else(|| format!("model card {name} has no labels list"))?;
        let num_classes = raw.get("num_classes").and_then(Value::as_u64).unwrap_or(0) as usize;
        if num_classes < 2 || labels.len() != num_classes {
            return Err(format!(
                "model card {name}: {} labels for {num_classes} classes",
                labels.len()
            ));
        }
        let size = |key: &str| {
            raw.pointer(&format!("/preprocessing/{key}"))
                .and_then(Value::as_u64)
                .filter(|v| *v > 0)
                .map(|v| v as usize)
                .ok_or_else(|| format!("model card {name} has no preprocessing.{key}"))
        };
        let (crop_size, resize_size) = (size("crop_size")?, size("resize_size")?);
        Ok(Card {
            labels,
            crop_size,
            resize_size,
            raw,
        })
    }
}

/// Softmax rows in request order and where the time went.
#[derive(Debug)]
pub struct BatchOutput {
    pub probabilities: Vec<Vec<f32>>,
    pub preprocess_ms: f64,
    pub inference_ms: f64,
}

/// A loaded, immutable model: reload builds a new one and swaps the reference.
pub struct Model {
    pub card: Card,
    pub artifact: PathBuf,
    pub sha256: String,
    pub runtime: Value,
    sessions: Mutex<Vec<Session>>,
}

impl Model {
    pub fn model_hash(&self) -> &str {
        &self.sha256[..MODEL_HASH_LENGTH.min(self.sha256.len())]
    }

    pub fn labels(&self) -> &[String] {
        &self.card.labels
    }

    /// Run `images` (any sizes) through one free session; the caller bounds the concurrency to the pool size.
    pub fn predict(&self, images: &[&Pixels]) -> Result<BatchOutput, String> {
        let started = Instant::now();
        let mut groups: Vec<((usize, usize), Vec<usize>)> = Vec::new();
        for (index, image) in images.iter().enumerate() {
            let key = (image.height, image.width);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(index),
                None => groups.push((key, vec![index])),
            }
        }
        let tensors: Vec<(Vec<usize>, Tensor<u8>)> = groups
            .into_iter()
            .map(|((height, width), members)| {
                let mut data = Vec::with_capacity(members.len() * height * width * 3);
                for &i in &members {
                    data.extend_from_slice(&images[i].data);
                }
                let shape = [members.len() as i64, height as i64, width as i64, 3];
                Tensor::from_array((shape, data))
                    .map(|t| (members, t))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let arranged = Instant::now();
        let mut session = self.take_session()?;
        let result = (|| {
            let mut rows: Vec<Vec<f32>> = vec![Vec::new(); images.len()];
            let classes = self.card.labels.len();
            for (members, tensor) in tensors {
                let outputs = session
                    .run(ort::inputs![INPUT_NAME => tensor])
                    .map_err(|e| e.to_string())?;
                let (_, values) = outputs[OUTPUT_NAME]
                    .try_extract_tensor::<f32>()
                    .map_err(|e| e.to_string())?;
                if values.len() != members.len() * classes {
                    return Err(format!(
                        "the model returned {} values for {} images",
                        values.len(),
                        members.len()
                    ));
                }
                for (row, &index) in members.iter().enumerate() {
                    rows[index] = values[row * classes..(row + 1) * classes].to_vec();
                }
            }
            Ok(rows)
        })();
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(session);
        let finished = Instant::now();
        Ok(BatchOutput {
            probabilities: result?,
            preprocess_ms: (arranged - started).as_secs_f64() * 1000.0,
            inference_ms: (finished - arranged).as_secs_f64() * 1000.0,
        })
    }

    fn take_session(&self) -> Result<Session, String> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or_else(|| {
                "no free inference session (the concurrency bound is broken)".to_string()
            })
    }

    /// A 480x640 and a crop-sized random image through every session, `iterations` times.
    pub fn warm_up(&self, iterations: usize) -> Result<f64, String> {
        let started = Instant::now();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut noise = |width: usize, height: usize| {
            let data = (0..width * height * 3)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            Pixels {
                width,
                height,
                data,
            }
        };
        let crop = self.card.crop_size;
        let images = [noise(640, 480), noise(crop, crop)];
        let count = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        // Take every session out so that each one is warmed, not the same one again and again.
        let mut taken = Vec::new();
        for _ in 0..count {
            taken.push(self.take_session()?);
        }
        let mut outcome = Ok(());
        for session in taken.iter_mut() {
            for _ in 0..iterations {
                for image in &images {
                    let shape = [1i64, image.height as i64, image.width as i64, 3];
                    let tensor = Tensor::from_array((shape, image.data.clone()))
                        .map_err(|e| e.to_string())?;
                    if let Err(e) = session.run(ort::inputs![INPUT_NAME => tensor]) {
                        outcome = Err(e.to_string());
                    }
                }
            }
        }
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(taken);
        outcome.map(|()| started.elapsed().as_secs_f64() * 1000.0)
    }
}

/// ONNX Runtime, loaded once per process from ORT_DYLIB_PATH (a file or a folder); Ok(version).
pub fn runtime(settings: &Settings) -> Result<&'static str, String> {
    static RUNTIME: OnceLock<Result<String, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let library = resolve_library(settings.ort_dylib_path.as_deref())?;
            let builder = ort::init_from(&library)
                .map_err(|e| without_paths(&format!("ONNX Runtime could not be loaded: {e}")))?;
            builder.with_name("rust-onnx-serving").commit();
            Ok(version_of(&library))
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// ORT_DYLIB_PATH as given: a library file, or a folder whose `libonnxruntime.so*` is used (the
/// onnxruntime wheel's `onnxruntime/capi`). Unset: the loader's search path (`libonnxruntime.so`).
pub fn resolve_library(configured: Option<&Path>) -> Result<PathBuf, String> {
    let Some(path) = configured else {
        return Ok(PathBuf::from("libonnxruntime.so"));
    };
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("ORT_DYLIB_PATH folder cannot be read: {e}"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name == "libonnxruntime.so"
                || name.starts_with("libonnxruntime.so.")
                || name == "libonnxruntime.dylib"
        })
        .collect();
    // Prefer the most specific name (libonnxruntime.so.1.31.1 over libonnxruntime.so.1 over libonnxruntime.so).
    candidates.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    candidates
        .into_iter()
        .next()
        .ok_or_else(|| "ORT_DYLIB_PATH names a folder without libonnxruntime.so*".to_string())
}

/// "1.31.1" from libonnxruntime.so.1.31.1 (after symlinks), else from ORT's build info.
fn version_of(library: &Path) -> String {
    let real = std::fs::canonicalize(library).unwrap_or_else(|_| library.to_path_buf());
    for candidate in [&real, &library.to_path_buf()] {
        if let Some(version) = candidate
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("libonnxruntime.so."))
            .filter(|v| v.split('.').all(|p| p.parse::<u32>().is_ok()))
        {
            return version.to_string();
        }
    }
    let info = ort::info();
    info.split("git-branch=rel-")
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .map(str::to_string)
        .unwrap_or_else(|| "unknown".into())
}

fn manifest_entry(model: &Path) -> Result<Option<Value>, String> {
    let path = model.with_file_name(MANIFEST_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{MANIFEST_FILE} cannot be read: {e}"))?;
    let manifest: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{MANIFEST_FILE} is not valid JSON: {e}"))?;
    let name = model.file_name().and_then(|n| n.to_str()).unwrap_or("");
    Ok(Some(
        manifest
            .pointer("/artifacts")
            .and_then(|a| a.get(name))
            .cloned()
            .unwrap_or_else(|| json!({})),
    ))
}

/// Refuse an artifact the build's validation rejected.
fn check_status(name: &str, entry: Option<&Value>) -> Result<(), String> {
    match entry.and_then(|e| e.get("status")).and_then(Value::as_str) {
        Some(status) if status != "accepted" => Err(format!(
            "{name} is marked '{status}' in {MANIFEST_FILE}; refusing to serve it"
        )),
        _ => Ok(()),
    }
}

/// Refuse a hardware-specific artifact this CPU may not run (onnx_serving's rule); Ok(hardware specific).
pub fn check_cpu(
    name: &str,
    bytes: &[u8],
    entry: Option<&Value>,
    here: &cpu::Fingerprint,
) -> Result<bool, String> {
    let reason = match entry {
        None => {
            if !bytes.windows(NCHWC_DOMAIN.len()).any(|w| w == NCHWC_DOMAIN) {
                return Ok(false);
            }
            format!("there is no {MANIFEST_FILE} recording the CPU it was optimized on")
        }
        Some(entry)
            if !entry
                .get("hardware_specific")
                .and_then(Value::as_bool)
                .unwrap_or(false) =>
        {
            return Ok(false)
        }
        Some(entry) => match cpu::mismatch(entry.get("cpu_fingerprint"), here) {
            None => return Ok(true),
            Some(reason) => reason,
        },
    };
    Err(format!(
        "{name} holds ONNX Runtime layout optimizations specific to the CPU that built it, and {reason}. Serve the \
         portable artifact instead (ONNX_MODEL=.../{PORTABLE_FILE}) or rebuild the artifacts on this machine with \
         `make artifacts`"
    ))
}

fn open_session(bytes: &[u8], settings: &Settings) -> Result<Session, String> {
    let fail = |e: ort::Error<ort::session::builder::SessionBuilder>| e.to_string();
    Session::builder()
        .map_err(|e| e.to_string())?
        // The graph was optimized offline when it was built; optimizing again at load only costs start-up.
        .with_optimization_level(GraphOptimizationLevel::Disable)
        .map_err(fail)?
        .with_intra_threads(settings.threads)
        .map_err(fail)?
        .with_inter_threads(settings.inter_op_threads)
        .map_err(fail)?
        .with_parallel_execution(false)
        .map_err(fail)?
        .with_intra_op_spinning(false)
        .map_err(fail)?
        .with_inter_op_spinning(false)
        .map_err(fail)?
        // No CPU arena, as onnx_serving (it keeps the decode buffers from being re-faulted every request).
        .with_execution_providers([ep::CPU::default().with_arena_allocator(false).build()])
        .map_err(fail)?
        .commit_from_memory(bytes)
        .map_err(|e| e.to_string())
}

fn check_interface(session: &Session, classes: usize, name: &str) -> Result<(), String> {
    let inputs = session.inputs();
    let ok = inputs.len() == 1
        && inputs[0].name() == INPUT_NAME
        && matches!(inputs[0].dtype(), ValueType::Tensor { ty: TensorElementType::Uint8, shape, .. } if shape.len() == 4);
    if !ok {
        let found: Vec<String> = inputs
            .iter()
            .map(|i| format!("{} {:?}", i.name(), i.dtype()))
            .collect();
        return Err(format!(
            "{name} must take one uint8 [N, H, W, 3] input named '{INPUT_NAME}', has {found:?}"
        ));
    }
    let output = session
        .outputs()
        .iter()
        .find(|o| o.name() == OUTPUT_NAME)
        .ok_or_else(|| {
            let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
            format!("{name} has no output named '{OUTPUT_NAME}' (outputs: {names:?})")
        })?;
    if let ValueType::Tensor { shape, .. } = output.dtype() {
        if let Some(&last) = shape.last() {
            if last > 0 && last as usize != classes {
                return Err(format!(
                    "{name} outputs {last} classes, its model card has {classes}"
                ));
            }
        }
    }
    Ok(())
}

/// Read and check the configured artifacts and open the session pool; Err is safe to show a client.
pub fn load(settings: &Settings) -> Result<Model, String> {
    load_inner(settings).map_err(|e| without_paths(&e))
}

fn load_inner(settings: &Settings) -> Result<Model, String> {
    let started = Instant::now();
    let version = runtime(settings)?;
    let runtime_ms = started.elapsed().as_secs_f64() * 1000.0;
    let path = &settings.onnx_model;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("model")
        .to_string();
    if !path.is_file() {
        return Err(format!(
            "ONNX model {name} not found (set ONNX_MODEL or run `make artifacts`)"
        ));
    }
    let card_path = settings.card_path();
    let card_name = card_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("card")
        .to_string();
    if !card_path.is_file() {
        return Err(format!("model card {card_name} not found"));
    }
    let card_text =
        std::fs::read_to_string(&card_path).map_err(|e| format!("model card {card_name}: {e}"))?;
    let card = Card::parse(&card_text, &card_name)?;
    let entry = manifest_entry(path)?;
    check_status(&name, entry.as_ref())?;
    let bytes =
        std::fs::read(path).map_err(|e| format!("ONNX model {name} cannot be read: {e}"))?;
    let hardware_specific = check_cpu(&name, &bytes, entry.as_ref(), &cpu::current())?;
    let read_ms = started.elapsed().as_secs_f64() * 1000.0 - runtime_ms;
    // The digest runs beside the session creation (both only read the bytes).
    let (sha256, sessions) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| hex(&Sha256::digest(&bytes)));
        let sessions = (0..settings.sessions())
            .map(|_| {
                let session = open_session(&bytes, settings)
                    .map_err(|e| format!("{name} cannot be loaded: {e}"))?;
                check_interface(&session, card.labels.len(), &name)?;
                Ok(session)
            })
            .collect::<Result<Vec<Session>, String>>();
        (digest.join().unwrap_or_default(), sessions)
    });
    let sessions = sessions?;
    crate::log::debug(
        "rust_onnx_serving.model",
        "model loaded",
        &[
            ("runtime_ms", crate::holder::round(runtime_ms, 1).into()),
            ("read_and_check_ms", crate::holder::round(read_ms, 1).into()),
            (
                "total_ms",
                crate::holder::round(started.elapsed().as_secs_f64() * 1000.0, 1).into(),
            ),
        ],
    );
    let runtime = json!({
        "name": "onnxruntime",
        "artifact": name,
        "artifact_sha256": sha256,
        "onnxruntime": version,
        "manifest_status": entry.as_ref().and_then(|e| e.get("status")).cloned().unwrap_or(Value::Null),
        "optimization_level": entry.as_ref().and_then(|e| e.get("level")).cloned().unwrap_or(Value::Null),
        "hardware_specific": hardware_specific,
        "graph_optimization_level_at_load": "ORT_DISABLE_ALL",
        "cpu_memory_arena": false,
        "thread_spinning": false,
        "intra_op_threads": settings.threads,
        "inter_op_threads": settings.inter_op_threads,
        "sessions": sessions.len(),
        "providers": ["CPUExecutionProvider"],
    });
    Ok(Model {
        card,
        artifact: path.clone(),
        sha256,
        runtime,
        sessions: Mutex::new(sessions),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = r#"{"num_classes": 2, "labels": ["a", "b"], "preprocessing": {"resize_size": 256, "crop_size": 224}}"#;

    #[test]
    fn card_needs_matching_labels_and_sizes() {
        let card = Card::parse(CARD, "c").unwrap();
        assert_eq!(
            (card.labels.len(), card.crop_size, card.resize_size),
            (2, 224, 256)
        );
        assert!(Card::parse(r#"{"num_classes": 3, "labels": ["a", "b"], "preprocessing": {"resize_size": 1, "crop_size": 1}}"#, "c").is_err());
        assert!(Card::parse(r#"{"num_classes": 2, "labels": ["a", "b"]}"#, "c").is_err());
        assert!(Card::parse("not json", "c").is_err());
    }

    #[test]
    fn manifest_status_and_cpu_rules() {
        let here = cpu::fingerprint_from(Some("flags: avx avx2"), "x86_64");
        assert!(check_status("m", Some(&json!({"status": "rejected"}))).is_err());
        assert!(check_status("m", Some(&json!({"status": "accepted"}))).is_ok());
        assert!(!check_cpu(
            "m",
            b"plain",
            Some(&json!({"hardware_specific": false})),
            &here
        )
        .unwrap());
        let same = json!({"hardware_specific": true, "cpu_fingerprint": {"machine": "x86_64", "isa": ["avx", "avx2"]}});
        assert!(check_cpu("m", b"", Some(&same), &here).unwrap());
        let other = json!({"hardware_specific": true, "cpu_fingerprint": {"machine": "x86_64", "isa": ["avx"]}});
        let error = check_cpu("m", b"", Some(&other), &here).unwrap_err();
        assert!(
            error.contains("extra here: avx2") && error.contains(PORTABLE_FILE),
            "{error}"
        );
        assert!(!check_cpu("m", b"no layout nodes", None, &here).unwrap());
        assert!(check_cpu("m", b"..com.microsoft.nchwc..", None, &here).is_err());
    }

    #[test]
    fn library_in_a_folder_is_found() {
        let dir = std::env::temp_dir().join(format!("ort-lib-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "libonnxruntime.so.1.31.1",
            "libonnxruntime_providers_shared.so",
            "other.so",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(
            resolve_library(Some(&dir)).unwrap(),
            dir.join("libonnxruntime.so.1.31.1")
        );
        assert_eq!(version_of(&dir.join("libonnxruntime.so.1.31.1")), "1.31.1");
        let file = dir.join("other.so");
        assert_eq!(resolve_library(Some(&file)).unwrap(), file);
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = std::env::temp_dir().join(format!("ort-lib-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        assert!(resolve_library(Some(&empty)).is_err());
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
