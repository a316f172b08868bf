//! Records the versions of the crates that matter (from Cargo.lock) and of rustc, for GET /info.

use std::process::Command;

const CRATES: [(&str, &str); 6] = [
    ("actix-web", "VERSION_ACTIX_WEB"),
    ("ort", "VERSION_ORT"),
    ("image", "VERSION_IMAGE"),
    ("zune-jpeg", "VERSION_ZUNE_JPEG"),
    ("tokio", "VERSION_TOKIO"),
    ("serde_json", "VERSION_SERDE_JSON"),
];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    for (name, variable) in CRATES {
        let needle = format!("name = \"{name}\"\nversion = \"");
        let version = lock
            .find(&needle)
            .map(|at| &lock[at + needle.len()..])
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("unknown");
        println!("cargo:rustc-env={variable}={version}");
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=VERSION_RUSTC={version}");
}
