//! Wiring: settings -> state -> HTTP server (bound before the model loads, so /health answers and /ready says
//! 503 until the model is loaded and warmed) -> graceful drain on SIGTERM.

use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::settings::Settings;
use crate::state::AppState;
use crate::{log, middleware, routes, shutdown};

pub async fn run(settings: Settings) -> std::io::Result<()> {
    log::set_level(settings.log_level);
    if settings.jpeg_draft {
        log::warning(
            "rust_onnx_serving",
            "JPEG_DRAFT is not supported by this service; JPEGs are decoded at full size",
            &[],
        );
    }
    let (host, port, workers) = (settings.host.clone(), settings.port, settings.workers);
    let graceful = settings.graceful_timeout;
    let keep_alive = settings.keep_alive();
    let state = web::Data::new(AppState::new(settings));
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .wrap_fn(|request, service| middleware::handle(request, service))
            .configure(routes::configure)
    })
    .workers(workers)
    .shutdown_timeout(graceful)
    .disable_signals()
    .keep_alive(keep_alive)
    .client_request_timeout(Duration::from_secs(30))
    // How long a connection answered before its body was all read goes on reading and dropping it (the
    // lingering close, middleware.rs `Unread`): nginx's 5 s lingering_timeout. actix's 1 s default resets a
    // client still sending a 21 MB body refused from its Content-Length over any link under ~170 Mbit/s.
    .client_disconnect_timeout(Duration::from_secs(5))
    .bind((host.as_str(), port))?;
    let bound: Vec<String> = server.addrs().iter().map(ToString::to_string).collect();
    let server = server.run();
    log::info(
        "rust_onnx_serving",
        "listening",
        &[
            ("addresses", bound.into()),
            ("workers", workers.into()),
            ("variant", state.settings.variant.as_str().into()),
        ],
    );
    let _loader = state.holder.initial_load();
    actix_web::rt::spawn(shutdown::on_signal(server.handle(), graceful));
    let result = server.await;
    log::info("rust_onnx_serving", "stopped", &[]);
    result
}
