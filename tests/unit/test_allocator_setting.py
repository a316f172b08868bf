"""onnx_serving's allocator settings: the glibc malloc tunables every onnx_serving process must start with,
and the ORT session option that goes with them (issue 11, item 4).

Why: with ORT's CPU arena off, every ``session.run`` allocates its buffers from glibc and frees them. For
photo_medium (1800x1200) the memory-pattern block is ~34 MB, above glibc's 32 MiB ceiling for the dynamic mmap
threshold, so it is a fresh mmap every request: 8,253 minor page faults and ~2x the CPU per request (46 ms ->
25 ms median at c1, 4 fresh processes each, ``python -m bench.analysis.speed_phases``). Smaller blocks fall to
glibc's heuristics (dynamic threshold, trimming, a worker thread's arena deleting its heap) and a process runs
at either speed depending on what it served before. All three tunables are needed: the mmap threshold alone
freezes the trim threshold at 128 KiB (trims and re-faults every request), and without ``MALLOC_ARENA_MAX=1``
the inference thread's arena still hands its heap back in some processes.

They are read when the interpreter starts, so they live in the process's environment: the registry's launch
env, the images' ENV. These tests fail when one of those loses them.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from artifact_contract.session import open_session
from bench.registry import load_registry

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "docker" / "python-variant.Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

ALLOCATOR_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(128 * 1024 * 1024),
}


def _stage_env(dockerfile: str) -> dict[str, dict[str, str]]:
    """``{stage name: {variable: value}}`` from the ENV instructions of each ``FROM ... AS stage``."""
    stages: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    joined = re.sub(r"\\\n", " ", dockerfile)  # continuation lines
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            current = stages.setdefault(words[-1] if "AS" in words else words[1], {})
        elif words[0] == "ENV" and current is not None:
            for pair in words[1:]:
                key, _, value = pair.partition("=")
                current[key] = value
    return stages


@pytest.mark.parametrize("stage", ["runtime", "dev"])
def test_both_images_start_with_the_allocator_settings(stage: str) -> None:
    env = _stage_env(DOCKERFILE.read_text())[stage]
    assert {key: env.get(key) for key in ALLOCATOR_ENV} == ALLOCATOR_ENV


def test_every_onnx_serving_launch_of_the_registry_carries_them() -> None:
    """The bench (local runner, in-process jobs) and the live tests start variants with this env."""
    launches = [v for v in load_registry() if v.local is not None and v.python_package == "onnx_serving"]
    assert launches, "the registry starts no onnx_serving process"
    # the one strategy that measures glibc's defaults, by unsetting them (tests/e2e/test_strategy_overlay.py)
    measuring_the_defaults = [v.name for v in launches if not set(ALLOCATOR_ENV) & set(v.local.env)]  # type: ignore[union-attr]
    assert measuring_the_defaults == ["onnx-malloc-default"]
    for variant in (v for v in launches if v.name not in measuring_the_defaults):
        env = variant.local.env  # type: ignore[union-attr]
        missing = {key: value for key, value in ALLOCATOR_ENV.items() if env.get(key) != value}
        assert not missing, f"bench/variants.toml: {variant.name}'s [variant.local] env lacks {missing}"


def test_env_example_documents_them() -> None:
    text = ENV_EXAMPLE.read_text()
    for key, value in ALLOCATOR_ENV.items():
        assert re.search(rf"^# {re.escape(key)}={value}\s", text, re.MULTILINE), key


def _glibc_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


MMAPPED_AFTER_MALLOC = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    names = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    _fields_ = [(name, ctypes.c_size_t) for name in names]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
before = libc.mallinfo2().hblkhd
pointer = libc.malloc(int(sys.argv[1]))
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not _glibc_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
def test_glibc_honours_them_for_a_block_the_size_of_orts_buffer() -> None:
    """glibc would ignore a value it does not accept: a 40 MB block (ORT's ~34 MB buffer with headroom) is
    mmapped by default and comes from the heap with the settings."""
    size = 40_000_000
    base = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}

    def mmapped(env: dict[str, str]) -> int:
        command = [sys.executable, "-c", MMAPPED_AFTER_MALLOC, str(size)]
        return int(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)

    assert mmapped(base) >= size
    assert mmapped({**base, **ALLOCATOR_ENV}) == 0


def test_the_served_session_plans_no_memory_pattern_block(tmp_path: Path) -> None:
    """With the memory pattern on, ORT asks for all of a run's intermediates as one block (~34 MB here): the
    heap fragments around it under concurrency (c4: RSS 383-427 MB with the tunables alone, 217 MB with the
    pattern off, the same speed). Pending in artifact_contract/session.py: ``options.enable_mem_pattern =
    False`` beside ``enable_cpu_mem_arena = False``."""
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", "height", "width", 3])
    output = helper.make_tensor_value_info("out", TensorProto.UINT8, ["batch", "height", "width", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "tiny", [image], [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    session = open_session(path)
    assert session.run(None, {"image": np.zeros((1, 2, 2, 3), np.uint8)})[0].shape == (1, 2, 2, 3)
    options = session.get_session_options()
    assert options.enable_cpu_mem_arena is False
    assert options.enable_mem_pattern is False, "artifact_contract/session.py: set enable_mem_pattern = False"
