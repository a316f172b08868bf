//! `rust-onnx-serving`: serve (settings from the environment), or `--healthcheck` (GET /ready on PORT).

use rust_onnx_serving::settings::Settings;
use rust_onnx_serving::{healthcheck, log, server};

const USAGE: &str = "usage: rust-onnx-serving [--healthcheck | --version]\n\
                     Settings come from the environment (PORT, HOST, ONNX_MODEL, MODEL_CARD, ORT_DYLIB_PATH, ...).";

fn main() {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("{}", log::line("error", "rust_onnx_serving", &problem, &[]));
            std::process::exit(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("--healthcheck") => std::process::exit(if healthcheck::check(settings.port) {
            0
        } else {
            1
        }),
        Some("--version") => {
            println!("rust-onnx-serving {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some(_) => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    let runtime = actix_web::rt::System::new();
    if let Err(error) = runtime.block_on(server::run(settings)) {
        eprintln!(
            "{}",
            log::line(
                "error",
                "rust_onnx_serving",
                &format!("cannot serve: {error}"),
                &[]
            )
        );
        std::process::exit(1);
    }
}
