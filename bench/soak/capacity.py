"""The steady rate's reference: the service's closed-loop ceiling, measured the way compare measures a level.

A short closed-loop level (``bench.load.driver.run_level``) with a few more users than the service has
workers: its successful throughput is what the service can do on its cores right now (the soak's rate is a
share of it). On a shared machine it is a snapshot; the soak records it beside the rate it chose.
"""

from __future__ import annotations

from pathlib import Path

from bench.load.driver import LoadSpec, run_level
from bench.registry import Variant
from bench.runners.base import Service

USERS_PER_WORKER = 4  # enough queued requests that the workers never wait for the generator
CAPACITY_WARMUP_S = 3.0
CAPACITY_DURATION_S = 10.0


def measure_capacity(
    service: Service,
    payload: str,
    out_dir: Path,
    cores: list[int] | None,
    *,
    workers: int = 1,
    duration_s: float = CAPACITY_DURATION_S,
) -> float:
    """Successful requests per second of a closed-loop level against the running ``service``."""
    variant: Variant = service.variant
    spec = LoadSpec(
        host=service.base_url,
        predict_path=variant.predict_path,
        payload_image=payload,
        payload_format=variant.payload_format.value,
        oip_input=variant.oip_input,
        users=USERS_PER_WORKER * max(workers, 1),
        warmup_s=CAPACITY_WARMUP_S,
        duration_s=duration_s,
    )
    window = run_level(spec, out_dir, cores)
    if window["successes"] == 0:
        raise RuntimeError(f"{variant.name}: nothing succeeded while measuring capacity ({window['errors']})")
    return window["successes"] / max(window["duration_s"], 1e-9)
