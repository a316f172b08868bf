"""Where a run's raw data and report live; the one place both the collectors and the report agree on."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_ROOT = Path(__file__).resolve().parent.parent / "results"
NOT_MEASURED = "n/a"
# run.json's "status"; "running" after the process ended: it was killed by SIGKILL (or the machine died).
RUNNING, COMPLETE, INTERRUPTED = "running", "complete", "interrupted"


def not_measured(reason: str) -> dict[str, str]:
    """What a collector writes for a figure its runner cannot measure: the report shows the reason."""
    return {"status": NOT_MEASURED, "reason": reason}


def is_not_measured(data: Any) -> bool:
    return isinstance(data, dict) and data.get("status") == NOT_MEASURED


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class RunDir:
    """One compare run: ``<root>/run.json``, ``raw/<variant>/...`` and the rendered report beside them."""

    root: Path

    @classmethod
    def create(cls, results_root: Path = RESULTS_ROOT) -> RunDir:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        root = results_root / stamp
        suffix = 1
        while root.exists():
            suffix += 1
            root = results_root / f"{stamp}-{suffix}"
        root.mkdir(parents=True)
        return cls(root)

    @property
    def run_file(self) -> Path:
        return self.root / "run.json"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    def variant_dir(self, variant: str) -> Path:
        return self.root / "raw" / variant

    def measurement(self, variant: str, kind: str) -> Path:
        """raw/<variant>/<kind>.json for info, accuracy, startup, footprint."""
        return self.variant_dir(variant) / f"{kind}.json"

    def machine_speed_file(self, variant: str, repeat: int) -> Path:
        """The machine's calibration just before that variant's load repeat (collectors.machine_speed)."""
        return self.variant_dir(variant) / f"machine-r{repeat}.json"

    @property
    def skipped_variants_file(self) -> Path:
        """``[{"name", "reason"}]`` of the registered variants the run left out (absent when none)."""
        return self.root / "raw" / "skipped_variants.json"

    def load_dir(self, variant: str, repeat: int, concurrency: int) -> Path:
        return self.variant_dir(variant) / "load" / f"r{repeat}-c{concurrency}"

    def ceiling_dir(self, variant: str, repeat: int) -> Path:
        return self.variant_dir(variant) / "ceiling" / f"r{repeat}"

    def openloop_dir(self, variant: str, repeat: int) -> Path:
        return self.variant_dir(variant) / "openloop" / f"r{repeat}"

    def slo_dir(self, variant: str) -> Path:
        """``search.json`` and one folder per probe (``probe-NN``)."""
        return self.variant_dir(variant) / "slo"

    def analysis_dir(self, variant: str) -> Path:
        """Sweep and operator profile (with the raw trace)."""
        return self.variant_dir(variant) / "analysis"

    def report_file(self, suffix: str) -> Path:
        return self.root / f"report.{suffix}"

    def refresh_latest(self) -> Path:
        """Point ``<results>/latest`` at this run (a symlink; a copy where symlinks are refused)."""
        latest = self.root.parent / "latest"
        if latest.is_symlink() or latest.is_file():
            latest.unlink()
        elif latest.is_dir():
            shutil.rmtree(latest)
        try:
            latest.symlink_to(self.root.name, target_is_directory=True)
        except OSError:
            shutil.copytree(self.root, latest)
        return latest
