"""End to end on the real variants: a short compare of torch_serving and onnx_serving fills every row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.registry import load_registry, select_variants

pytestmark = [pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ["torch", "onnx"]
LEVELS = (1, 4)


def _missing_artifacts() -> list[str]:
    return [
        str(path)
        for variant in select_variants(load_registry(include_builtin=True, environ={}), VARIANTS)
        for path in variant.artifact_paths
        if not path.is_file()
    ]


def test_short_compare_of_the_real_variants(tmp_path: Path) -> None:
    missing = _missing_artifacts()
    if missing:
        pytest.skip(f"model artifacts not built yet (`make artifacts`): {missing}")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "compare", "--variants", ",".join(VARIANTS), "--runner", "local",
         "--levels", ",".join(map(str, LEVELS)), "--duration", "3", "--warmup", "1", "--repeats", "1",
         "--startup-runs", "1", "--cold-runs", "1", "--results-dir", str(tmp_path),
         "--ceiling-iterations", "20", "--open-duration", "3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "latest" / "report.json").read_text())
    assert report["baseline"] == "torch"
    assert not any("failed" in flag for flag in report["flags"]), report["flags"]  # no failed step
    assert not [flag for flag in report["flag_details"] if flag["code"] == "step_failed"], report["flags"]
    assert report["skipped_variants"] == []
    rows = {row["key"]: row["cells"] for row in report["rows"]}
    for variant in VARIANTS:
        for users in LEVELS:
            assert rows[f"c{users}.rps"][variant]["median"] > 1
            assert rows[f"c{users}.failures"][variant]["median"] == 0
            assert 0 < rows[f"c{users}.p50"][variant]["median"] <= rows[f"c{users}.p99.9"][variant]["median"]
            assert rows[f"c{users}.cpu_mean"][variant]["median"] > 10  # it was busy serving
            assert rows[f"c{users}.rss_peak_mb"][variant]["median"] > 50
        assert 0 < rows["startup.ready_s"][variant]["median"] < 120
        assert rows["startup.cold_first_request_ms"][variant]["median"] > 0
        assert rows["accuracy.top1"][variant]["median"] >= 95.0
        assert rows["footprint.artifacts_mb"][variant]["median"] > 0.5
        assert rows["info.model_hash"][variant]["text"] and not rows["info.model_hash"][variant][
            "text"
        ].startswith("n/a")
        assert rows["footprint.image_mb"][variant]["text"] == "n/a (local runner: no image)"
        # The analysis phase: ceiling, stage breakdown, serving efficiency, open loop at the common rate.
        assert rows["ceiling.rps"][variant]["median"] > 1
        assert rows["ceiling.stage.inference"][variant]["median"] > 0
        assert rows["ceiling.peak_rss_mb"][variant]["median"] > 50
        assert rows["efficiency"][variant]["median"] > 5  # above 100 it is flagged, see the unit tests
        assert rows["open.rps"][variant]["median"] > 0
        assert rows["open.p50"][variant]["median"] <= rows["open.p99"][variant]["median"]
    # The machine's calibration before each repeat, on the service cores, and the host's steal per window.
    [run_dir] = [path for path in tmp_path.iterdir() if path.is_dir() and path.name != "latest"]
    pinning = json.loads((run_dir / "run.json").read_text())["pinning"]
    for variant in VARIANTS:
        speed = json.loads((run_dir / "raw" / variant / "machine-r0.json").read_text())
        expected = pinning["service_cores"] or sorted(os.sched_getaffinity(0))  # unpinned: every core
        assert [core["core"] for core in speed["cores"]] == expected
        assert all(core["compute_ms"] > 0 and core["memory_ms"] > 0 for core in speed["cores"])
        window = json.loads((run_dir / "raw" / variant / "load" / "r0-c1" / "window.json").read_text())
        assert 0 <= window["host_steal_percent"] < 100
    assert any(note.startswith("Machine: ") and "probes" in note for note in report["notes"]), report["notes"]
    assert "- Machine during the run: " in (tmp_path / "latest" / "report.md").read_text()
    closure = rows["footprint.closure_mb"]
    assert closure["torch"]["median"] > 3 * closure["onnx"]["median"]
    assert closure["onnx"]["ratio_to_baseline"] < 0.34
