"""The CPU fingerprint that decides whether a hardware-specific ONNX artifact may run on this machine.

ONNX Runtime's ``ORT_ENABLE_ALL`` level rewrites convolutions into NCHWc nodes whose block size and kernels
are chosen for the CPU that optimized the graph (8 floats per block with AVX2, 16 with AVX-512, ...). A graph
saved that way is only trusted on a CPU with the same architecture and the same kernel-deciding ISA
extensions, so the build records this fingerprint and the service compares it before loading. Torch-free: the
onnx image ships it.
"""

from __future__ import annotations

import platform
from pathlib import Path

from typing_extensions import TypedDict  # pydantic validates typing's own only from Python 3.12

CPUINFO = Path("/proc/cpuinfo")
# The instruction-set extensions ONNX Runtime's MLAS picks its x86 and Arm kernels by; other flags (caches,
# virtualization, mitigations) differ between identical hosts and must not break the comparison.
KERNEL_ISA_FLAGS = frozenset(
    {
        # x86-64
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
        # aarch64 (the "Features" line)
        "asimd",
        "asimddp",
        "asimdhp",
        "i8mm",
        "bf16",
        "sve",
        "sve2",
    }
)
FLAG_KEYS = ("flags", "features")  # x86 / Arm spelling of the line listing the extensions


class CpuFingerprint(TypedDict):
    machine: str
    isa: list[str] | None  # None: the flags could not be read
    source: str


def _first_flag_line(cpuinfo_text: str) -> set[str] | None:
    for line in cpuinfo_text.splitlines():
        key, separator, value = line.partition(":")
        if separator and key.strip().lower() in FLAG_KEYS:
            return set(value.split())
    return None


def cpu_fingerprint(cpuinfo: Path = CPUINFO) -> CpuFingerprint:
    """``{"machine", "isa", "source"}``: the architecture and the sorted kernel-deciding ISA flags present.

    Where ``/proc/cpuinfo`` is unreadable (macOS, Windows), ``isa`` is None and ``source`` says so: the
    comparison then rests on the architecture alone, and a hardware-specific artifact is refused by
    ``fingerprint_mismatch`` rather than trusted.
    """
    machine = platform.machine().lower() or "unknown"
    try:
        flags = _first_flag_line(cpuinfo.read_text(errors="replace"))
    except OSError:
        flags = None
    if flags is None:
        return {"machine": machine, "isa": None, "source": "unavailable"}
    return {"machine": machine, "isa": sorted(flags & KERNEL_ISA_FLAGS), "source": str(cpuinfo)}


def fingerprint_mismatch(recorded: CpuFingerprint | None, current: CpuFingerprint) -> str | None:
    """Why an artifact optimized on ``recorded`` cannot be trusted on ``current``; None when they match."""
    if not recorded:
        return "the build recorded no CPU fingerprint"
    if current.get("isa") is None or recorded.get("isa") is None:
        return "the CPU's instruction-set flags are unknown on one of the two machines"
    if recorded.get("machine") != current.get("machine"):
        return f"built on {recorded.get('machine')}, running on {current.get('machine')}"
    built, running = set(recorded["isa"]), set(current["isa"])
    if built != running:
        parts = []
        if built - running:
            parts.append(f"missing here: {', '.join(sorted(built - running))}")
        if running - built:
            parts.append(f"extra here: {', '.join(sorted(running - built))}")
        return "instruction-set flags differ (" + "; ".join(parts) + ")"
    return None
