//! The serving-lab predict contract in Rust: actix-web in front, ONNX Runtime (loaded at run time from the
//! onnxruntime wheel's library) on the fused graph behind. One module per job.

pub mod body;
pub mod cpu;
pub mod decode;
pub mod errors;
pub mod healthcheck;
pub mod holder;
pub mod log;
pub mod metrics;
pub mod middleware;
pub mod model;
pub mod multipart;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod state;
