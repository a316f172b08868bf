//! Graceful drain: on SIGTERM (or SIGINT) the listening sockets close at once (new connections are refused),
//! requests in flight get up to GRACEFUL_TIMEOUT seconds to finish, then the process exits with code 0.

use actix_web::dev::ServerHandle;
use tokio::signal::unix::{signal, SignalKind};

use crate::log;

/// Wait for SIGTERM or SIGINT, then stop the server gracefully (actix's shutdown_timeout bounds the drain).
pub async fn on_signal(handle: ServerHandle, graceful_seconds: u64) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error(
            "rust_onnx_serving.shutdown",
            "cannot install the signal handlers",
            &[],
        );
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    log::info(
        "rust_onnx_serving.shutdown",
        "shutting down: no new connections, requests in flight may finish",
        &[
            ("signal", name.into()),
            ("graceful_timeout_s", graceful_seconds.into()),
        ],
    );
    handle.stop(true).await;
}
