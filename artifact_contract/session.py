"""How a pre-optimized fused artifact is opened, in one place: by the service, and by the build's validation
and speed measurement (so what was checked and timed is what is served).
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

PROVIDERS = ["CPUExecutionProvider"]


def open_session(path: str | Path, threads: int = 1, inter_op_threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # The graph was optimized offline when it was built; optimizing again at load only costs start-up time.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning pool threads steal the core from the decode threads: with THREADS=2 on one core, Pillow decode
    # right after a run measured 2x slower with spinning on (and the run itself slower too).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # ORT's arena keeps the largest request's buffers for good (RSS 210 -> 482 MB after three 3584x3584
    # photos) and, returning nothing to glibc, kept glibc from raising its mmap threshold for decode buffers.
    options.enable_cpu_mem_arena = False
    # With the arena off, the memory pattern's one block per run holds every intermediate tensor at once
    # (~34 MB for a 1800x1200 photo); without it each tensor is its own, smaller, allocation: 45 MB less RSS
    # at c1 and no growth at c4, as fast under the glibc settings of .env.example (MALLOC_*), measured with
    # bench/analysis/speed_phases.py.
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), sess_options=options, providers=PROVIDERS)
