//! The CPU fingerprint that decides whether a hardware-specific artifact may run here, computed exactly as
//! artifact_contract/cpu.py does (architecture + the kernel-deciding ISA flags of /proc/cpuinfo), so that the
//! manifest's `cpu_fingerprint` written by the Python build compares equal on the same machine.

use serde_json::Value;

/// The instruction-set extensions ONNX Runtime's MLAS picks its kernels by (x86-64, then aarch64).
pub const KERNEL_ISA_FLAGS: [&str; 23] = [
    "sse4_1",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "asimdhp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub machine: String,
    /// Sorted; None where /proc/cpuinfo has no flags line.
    pub isa: Option<Vec<String>>,
}

/// The flags of the first `flags` (x86) or `Features` (Arm) line.
pub fn fingerprint_from(cpuinfo: Option<&str>, machine: &str) -> Fingerprint {
    let flags = cpuinfo.and_then(|text| {
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let key = key.trim().to_ascii_lowercase();
            (key == "flags" || key == "features")
                .then(|| value.split_whitespace().collect::<Vec<_>>())
        })
    });
    let isa = flags.map(|flags| {
        let mut isa: Vec<String> = KERNEL_ISA_FLAGS
            .iter()
            .filter(|f| flags.contains(f))
            .map(|f| f.to_string())
            .collect();
        isa.sort();
        isa
    });
    Fingerprint {
        machine: machine.to_ascii_lowercase(),
        isa,
    }
}

pub fn current() -> Fingerprint {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok();
    fingerprint_from(text.as_deref(), std::env::consts::ARCH)
}

/// Why an artifact optimized on `recorded` (the manifest's JSON) cannot be trusted on `current`; None: same.
pub fn mismatch(recorded: Option<&Value>, current: &Fingerprint) -> Option<String> {
    let recorded = match recorded {
        Some(Value::Object(map)) if !map.is_empty() => map,
        _ => return Some("the build recorded no CPU fingerprint".into()),
    };
    let built_isa: Option<Vec<String>> =
        recorded.get("isa").and_then(Value::as_array).map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
    let (Some(built), Some(running)) = (built_isa, current.isa.as_ref()) else {
        return Some(
            "the CPU's instruction-set flags are unknown on one of the two machines".into(),
        );
    };
    let built_machine = recorded
        .get("machine")
        .and_then(Value::as_str)
        .unwrap_or("");
    if built_machine != current.machine {
        return Some(format!(
            "built on {built_machine}, running on {}",
            current.machine
        ));
    }
    let missing: Vec<&str> = built
        .iter()
        .filter(|f| !running.contains(f))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = running
        .iter()
        .filter(|f| !built.contains(f))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing here: {}", sorted(missing).join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("extra here: {}", sorted(extra).join(", ")));
    }
    Some(format!(
        "instruction-set flags differ ({})",
        parts.join("; ")
    ))
}

fn sorted(mut items: Vec<&str>) -> Vec<&str> {
    items.sort_unstable();
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CPUINFO: &str = "processor\t: 0\nflags\t\t: fpu sse4_1 avx avx2 fma f16c ht\n\nprocessor\t: 1\nflags : fpu\n";

    #[test]
    fn reads_the_first_flags_line_and_keeps_kernel_flags() {
        let fp = fingerprint_from(Some(CPUINFO), "x86_64");
        assert_eq!(
            fp.isa.unwrap(),
            vec!["avx", "avx2", "f16c", "fma", "sse4_1"]
        );
        assert_eq!(fingerprint_from(None, "x86_64").isa, None);
    }

    #[test]
    fn compares_like_serving_core() {
        let here = fingerprint_from(Some(CPUINFO), "x86_64");
        let same = json!({"machine": "x86_64", "isa": ["avx", "avx2", "f16c", "fma", "sse4_1"], "source": "/proc/cpuinfo"});
        assert_eq!(mismatch(Some(&same), &here), None);
        let other = json!({"machine": "x86_64", "isa": ["avx", "avx2", "avx512f", "f16c", "fma", "sse4_1"]});
        assert!(mismatch(Some(&other), &here)
            .unwrap()
            .contains("missing here: avx512f"));
        let arm = json!({"machine": "aarch64", "isa": ["avx", "avx2", "f16c", "fma", "sse4_1"]});
        assert!(mismatch(Some(&arm), &here)
            .unwrap()
            .contains("built on aarch64"));
        assert!(mismatch(None, &here)
            .unwrap()
            .contains("no CPU fingerprint"));
        assert!(
            mismatch(Some(&json!({"machine": "x86_64", "isa": null})), &here)
                .unwrap()
                .contains("unknown")
        );
    }
}
