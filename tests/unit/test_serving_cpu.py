"""The CPU fingerprint read from /proc/cpuinfo text, and the comparison that guards CPU-specific artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving_core.cpu import cpu_fingerprint, fingerprint_mismatch

X86_CPUINFO = """processor\t: 0
model name\t: Some CPU
flags\t\t: fpu sse sse2 sse4_1 avx avx2 fma hypervisor avx512f avx512bw avx512vl avx512_vnni pku
processor\t: 1
flags\t\t: fpu sse sse2 sse4_1 avx avx2 fma hypervisor avx512f avx512bw avx512vl avx512_vnni pku
"""
ARM_CPUINFO = """processor\t: 0
Features\t: fp asimd evtstrm aes crc32 asimddp sve i8mm
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_x86_fingerprint_keeps_only_the_kernel_deciding_flags(tmp_path) -> None:
    fingerprint = cpu_fingerprint(write(tmp_path, X86_CPUINFO))
    assert fingerprint["isa"] == sorted(
        ["sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"]
    )
    assert fingerprint["source"].endswith("cpuinfo")


def test_arm_features_line_is_read(tmp_path) -> None:
    assert cpu_fingerprint(write(tmp_path, ARM_CPUINFO))["isa"] == ["asimd", "asimddp", "i8mm", "sve"]


@pytest.mark.parametrize("text", [None, "processor\t: 0\nmodel name\t: no flag line\n"])
def test_unreadable_cpuinfo_gives_unknown_isa(tmp_path, text) -> None:
    path = write(tmp_path, text) if text is not None else tmp_path / "missing"
    fingerprint = cpu_fingerprint(path)
    assert fingerprint["isa"] is None and fingerprint["source"] == "unavailable"
    assert fingerprint["machine"]


def test_this_machine_matches_itself() -> None:
    assert fingerprint_mismatch(cpu_fingerprint(), cpu_fingerprint()) is None


def test_mismatches_name_the_difference(tmp_path) -> None:
    built = cpu_fingerprint(write(tmp_path, X86_CPUINFO))
    avx2_only = {**built, "isa": ["avx", "avx2", "fma", "sse4_1"]}
    reason = fingerprint_mismatch(built, avx2_only)
    assert reason is not None and "missing here" in reason and "avx512f" in reason
    reason = fingerprint_mismatch(avx2_only, built)
    assert reason is not None and "extra here" in reason and "avx512_vnni" in reason
    assert "aarch64" in str(fingerprint_mismatch(built, {**built, "machine": "aarch64"}))
    assert "unknown" in str(fingerprint_mismatch(built, {**built, "isa": None}))
    assert "no CPU fingerprint" in str(fingerprint_mismatch(None, built))
