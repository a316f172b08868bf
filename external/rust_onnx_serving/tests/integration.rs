//! The real server against the real artifact: starts the built binary on a free loopback port when
//! ORT_DYLIB_PATH (or the repository's .venv onnxruntime) and build/artifacts/fused.optimized.onnx exist;
//! otherwise it says why and passes (CI runs the Python suites against the binary as well).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_rust-onnx-serving");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ort_library() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(path));
    }
    let capi = repo().join(".venv/lib/python3.11/site-packages/onnxruntime/capi");
    capi.is_dir().then_some(capi)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Response {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Response {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&self.body)))
    }
}

fn request(
    port: u16,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
    out
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(port: u16, library: &Path, extra: &[(&str, &str)]) -> Server {
    let mut command = Command::new(BINARY);
    command
        .current_dir(repo())
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("ORT_DYLIB_PATH", library)
        .env(
            "ONNX_MODEL",
            repo().join("build/artifacts/fused.optimized.onnx"),
        )
        .env("ADMIN_TOKEN", "integration-token")
        .env("LOG_LEVEL", "warning")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in extra {
        command.env(key, value);
    }
    Server(command.spawn().expect("the binary starts"))
}

fn wait_ready(port: u16) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(response) = request(port, "GET", "/ready", None, b"") {
            if response.status == 200 {
                return started.elapsed();
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("not ready after 60 s");
}

#[test]
fn the_real_server_speaks_the_contract() {
    let Some(library) = ort_library() else {
        eprintln!("skipped: no ORT_DYLIB_PATH and no .venv onnxruntime");
        return;
    };
    if !repo()
        .join("build/artifacts/fused.optimized.onnx")
        .is_file()
    {
        eprintln!("skipped: build/artifacts/fused.optimized.onnx is missing (make artifacts)");
        return;
    }
    let port = free_port();
    let mut server = start(port, &library, &[("GRACEFUL_TIMEOUT", "5")]);
    let ready_after = wait_ready(port);
    eprintln!("start to ready: {:.3} s", ready_after.as_secs_f64());

    assert_eq!(
        request(port, "GET", "/health", None, b"").unwrap().json()["status"],
        "ok"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("images/digits/manifest.json")).unwrap(),
    )
    .unwrap();
    let entries = manifest["images"].as_array().unwrap();
    let mut correct = 0;
    for entry in entries.iter().take(40) {
        let data = std::fs::read(
            repo()
                .join("images/digits")
                .join(entry["file"].as_str().unwrap()),
        )
        .unwrap();
        let response = request(port, "POST", "/predict?top_k=3", Some("image/png"), &data).unwrap();
        assert_eq!(response.status, 200);
        let body = response.json();
        assert_eq!(body["top_k"].as_array().unwrap().len(), 3);
        assert_eq!(body["variant"], "rust");
        correct += usize::from(body["class_index"] == entry["label"]);
    }
    assert!(correct >= 36, "{correct}/40 digits right");

    let error = request(port, "POST", "/predict", Some("text/plain"), b"x").unwrap();
    assert_eq!(
        (error.status, error.json()["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let error = request(port, "POST", "/predict", Some("image/png"), b"not a png").unwrap();
    assert_eq!(error.status, 400);
    let error = request(port, "GET", "/predict", None, b"").unwrap();
    assert_eq!(error.status, 405);
    assert!(error.headers.to_ascii_lowercase().contains("allow: post"));
    assert_eq!(
        request(port, "GET", "/nothing", None, b"").unwrap().status,
        404
    );
    let metrics = request(port, "GET", "/metrics", None, b"").unwrap();
    assert!(String::from_utf8_lossy(&metrics.body).contains(
        "serving_requests_total{method=\"POST\",route=\"/predict\",status=\"200\"} 40.0"
    ));
    assert_eq!(
        request(port, "POST", "/admin/reload", None, b"")
            .unwrap()
            .status,
        401
    );

    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_missing_artifact_keeps_ready_503_with_the_reason() {
    let Some(library) = ort_library() else {
        eprintln!("skipped: no ORT_DYLIB_PATH and no .venv onnxruntime");
        return;
    };
    let port = free_port();
    let _server = start(
        port,
        &library,
        &[("ONNX_MODEL", "/nonexistent/dir/model.onnx")],
    );
    let started = Instant::now();
    loop {
        if let Ok(response) = request(port, "GET", "/ready", None, b"") {
            let body = response.json();
            let message = body["error"]["message"].as_str().unwrap_or("").to_string();
            if response.status == 503 && message.contains("not found") {
                assert!(!message.contains("/nonexistent"), "{message}");
                assert!(response
                    .headers
                    .to_ascii_lowercase()
                    .contains("retry-after: 1"));
                assert_eq!(
                    request(port, "GET", "/health", None, b"").unwrap().status,
                    200
                );
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never reported the failed load"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
