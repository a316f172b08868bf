"""Fixtures for the Rust service (external/rust_onnx_serving): skipped only when cargo is absent, never in CI.

The binary is built by the variant's own `[variant.local] build` (cargo build --release --locked) through the
suite's registry machinery (tests/conftest.py ``start_registered_variant``), once per session.
"""

from __future__ import annotations

import os
import shutil

import pytest

RUST_VARIANT = "rust"


def require_cargo() -> None:
    """cargo on PATH, or a skip with the reason (a failure under CI, where the toolchain must be there)."""
    if shutil.which("cargo") is not None:
        return
    message = "the Rust service needs `cargo` on PATH to build (not found)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the Rust tests")
    pytest.skip(message)


@pytest.fixture
def start_rust(start_registered_variant):
    """``start_rust(name=..., env={...}, workers=None, wait=True) -> LiveService``: the Rust variant as the
    bench starts it (release binary, the onnxruntime wheel's library), stopped after the test."""
    require_cargo()

    def start(**kwargs):
        return start_registered_variant(RUST_VARIANT, **kwargs)

    return start
