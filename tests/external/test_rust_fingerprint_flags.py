"""The Rust service decides whether a CPU-specific artifact may run by the same ISA flags as the Python side:
its constant must list exactly artifact_contract.cpu.KERNEL_ISA_FLAGS, or the two would judge one manifest
differently. Read from the source, so this needs no cargo.
"""

from __future__ import annotations

import re
from pathlib import Path

from artifact_contract.cpu import KERNEL_ISA_FLAGS

RUST_CPU_SOURCE = Path(__file__).resolve().parents[2] / "external" / "rust_onnx_serving" / "src" / "cpu.rs"


def test_rust_kernel_flags_equal_the_artifact_contracts() -> None:
    source = RUST_CPU_SOURCE.read_text()
    declaration = re.search(r"pub const KERNEL_ISA_FLAGS: \[&str; (\d+)\] = \[(.*?)\];", source, re.DOTALL)
    assert declaration, f"no KERNEL_ISA_FLAGS array in {RUST_CPU_SOURCE}"
    rust_flags = re.findall(r'"([^"]+)"', declaration.group(2))
    assert int(declaration.group(1)) == len(rust_flags)
    assert sorted(rust_flags) == sorted(KERNEL_ISA_FLAGS)
