"""End to end: a real third-party Open Inference Protocol (v2) server, MLServer, benchmarked by the bench.

The `mlserver` variant (external/mlserver_onnx/) is built by its own `[variant.local] build` hook (MLServer's
virtual environment), started by the bench's local runner and measured beside onnx by a small real `bench
compare`: the same graph and the same decode, so the same top-1 on every held-out digit. MLServer 1.7.1's REST
API does not implement the binary tensor data extension (its server metadata lists no extension): with
`oip-v2-binary` every request is refused, and the bench must count none of them as a success. The binary
body is checked against the Triton client's own encoding (tritonclient, installed in MLServer's venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.collectors.accuracy import DEFAULT_MANIFEST, measure_accuracy
from bench.load.driver import run_level
from bench.load.spec import LoadSpec
from bench.payloads import BINARY_HEADER, IMAGES_DIR, load_payload, predicted_class
from bench.registry import PayloadFormat, Variant, load_registry
from bench.runners.local import LocalRunner, free_port
from tests.fixtures.variants import ensure_startable, variant_named

pytestmark = [pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = REPO_ROOT / "build" / "artifacts" / "fused.optimized.onnx"
MLSERVER_PYTHON = REPO_ROOT / "build" / "venvs" / "mlserver_onnx" / "bin" / "python"
PHOTO = IMAGES_DIR / "photo_small.jpg"


@pytest.fixture(scope="module")
def mlserver() -> Variant:
    missing = [str(path) for path in (ARTIFACT, DEFAULT_MANIFEST, PHOTO) if not path.is_file()]
    if missing:
        pytest.skip(f"missing {missing}: run `make artifacts images`")
    variant = variant_named("mlserver")
    assert variant is not None, "external/mlserver_onnx/variants.toml declares no `mlserver`"
    ensure_startable(variant)  # the build hook: MLServer's venv, skipped when its stamp is current
    return variant


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "BENCH_VARIANTS_FILES": ""},
    )


def test_mlserver_is_benchmarked_over_oip_v2_beside_onnx(mlserver: Variant, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = _bench(
        "compare", "--runner", "local", "--variants", "onnx,mlserver", "--levels", "1", "--duration", "3",
        "--warmup", "1", "--repeats", "1", "--startup-runs", "1", "--cold-runs", "0", "--open-runs", "0",
        "--ceiling-iterations", "5", "--no-slo-search", "--no-sweep", "--no-profiler", "--no-jpeg-draft",
        "--budget", "none", "--results-dir", str(results),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    latest = results / "latest"
    report = json.loads((latest / "report.json").read_text())
    assert report["variants"] == ["onnx", "mlserver"]
    rows = {row["key"]: row["cells"] for row in report["rows"]}
    for variant in ("onnx", "mlserver"):
        assert rows["c1.rps"][variant]["median"] > 0, variant
        assert rows["c1.failures"][variant]["median"] == 0, variant
        assert 0 < rows["c1.p50"][variant]["median"] <= rows["c1.p99"][variant]["median"]
    assert 0 < rows["startup.ready_s"]["mlserver"]["median"] < 120
    assert not (latest / "raw" / "mlserver" / "errors").exists()  # every step ran (in process: n/a)
    accuracy = json.loads((latest / "raw" / "mlserver" / "accuracy.json").read_text())
    exact = json.loads((latest / "raw" / "onnx" / "accuracy.json").read_text())
    assert accuracy["errors"] == 0 and accuracy["images"] == exact["images"] > 0
    assert rows["accuracy.top1"]["mlserver"]["median"] == rows["accuracy.top1"]["onnx"]["median"]
    assert accuracy["mistakes"] == exact["mistakes"]  # the same graph and decode: the same digits missed
    info = json.loads((latest / "raw" / "mlserver" / "info.json").read_text())["info"]
    assert info["name"] == "fused-onnx" and info["inputs"][0]["datatype"] == "BYTES"  # its model metadata
    for variant in ("onnx", "mlserver"):
        figures = {
            key: rows[key][variant]["median"] for key in ("c1.rps", "c1.p50", "c1.p99", "accuracy.top1")
        }
        print(variant, json.dumps(figures))  # shown with -s


def _binary_variant(tmp_path: Path) -> Variant:
    """`mlserver` with the binary format, by a variants file as a user would write it."""
    extra = tmp_path / "binary.toml"
    extra.write_text(
        f'root = "{REPO_ROOT}"  # the commands name {{root}}: the repository\n\n[[variant]]\n'
        'name = "mlserver-binary"\nextends = "mlserver"\npayload_format = "oip-v2-binary"\n'
        f"port = {free_port()}\n"
    )
    variant = next(variant for variant in load_registry([extra]) if variant.name == "mlserver-binary")
    assert variant.payload_format is PayloadFormat.OIP_V2_BINARY and variant.oip_input == "image"
    return variant


def test_mlserver_refuses_the_binary_extension_and_nothing_counts_as_a_success(
    mlserver: Variant, tmp_path: Path
) -> None:
    variant = _binary_variant(tmp_path)
    runner = LocalRunner()
    assert runner.skip_reason(variant) is None
    service = runner.start_ready(variant, log_path=tmp_path / "mlserver-binary.log")
    try:
        assert "binary_tensor_data" not in httpx.get(service.url("/v2")).json()["extensions"]
        payload = load_payload(PHOTO, variant.payload_format, oip_input=variant.oip_input)
        answer = httpx.post(service.url(variant.predict_path), content=payload.body, headers=payload.headers)
        # 422, or 500 for an image that is not UTF-8: its validation error handler fails to echo the body
        assert answer.status_code in {422, 500}, answer.text
        assert (
            predicted_class(variant.payload_format, answer.status_code, answer.headers, answer.content)
            is None
        )
        spec = LoadSpec(
            host=service.base_url,
            predict_path=variant.predict_path,
            payload_image=str(payload.source),
            payload_format=variant.payload_format.value,
            oip_input=variant.oip_input,
            users=1,
            warmup_s=0.5,
            duration_s=1.5,
        )
        window = run_level(spec, tmp_path / "load")
        assert window["requests"] > 0 and window["successes"] == 0
        assert window["failures"] == window["requests"]
        accuracy = measure_accuracy(service)
        assert accuracy["correct"] == 0 and accuracy["errors"] == accuracy["images"] > 0
    finally:
        runner.stop(service)


TRITON_CLIENT_BODY = """
import json, sys
import numpy as np
from tritonclient.http import InferInput
from tritonclient.http._utils import _get_inference_request

tensor = InferInput(sys.argv[1], [1], "BYTES")
tensor.set_data_from_numpy(np.array([open(sys.argv[2], "rb").read()], dtype=object), binary_data=True)
body, header_length = _get_inference_request([tensor], "", None, 0, False, False, 0, None, None)
sys.stdout.buffer.write(json.dumps({"header_length": header_length}).encode() + b"\\n" + body)
"""


def test_the_binary_body_is_the_triton_client_s_encoding(mlserver: Variant) -> None:
    done = subprocess.run(
        [str(MLSERVER_PYTHON), "-c", TRITON_CLIENT_BODY, "image", str(PHOTO)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    meta, theirs = done.stdout.split(b"\n", 1)
    their_split = json.loads(meta)["header_length"]
    ours = load_payload(PHOTO, PayloadFormat.OIP_V2_BINARY, oip_input="image")
    our_split = int(ours.headers[BINARY_HEADER])
    assert ours.body[our_split:] == theirs[their_split:]  # the tensor bytes: length prefix + image
    (their_input,) = json.loads(theirs[:their_split])["inputs"]
    (our_input,) = json.loads(ours.body[:our_split])["inputs"]
    assert our_input == their_input


def test_the_bench_drives_the_labs_own_oip_endpoints_in_both_formats(tmp_path: Path) -> None:
    """The binary extension proven end to end on an OIP server that implements it: serving_core's, reached by
    variants that are onnx with an OIP payload format (what a user would write to benchmark one)."""
    extra = tmp_path / "oip.toml"
    extra.write_text(
        f'root = "{REPO_ROOT}"\n'
        + "".join(
            f'\n[[variant]]\nname = "{name}"\nextends = "onnx"\npayload_format = "{fmt}"\n'
            f'oip_model = "onnx"\noip_input = "image"\nport = {free_port()}\n'
            for name, fmt in (("onnx-oip", "oip-v2"), ("onnx-oip-binary", "oip-v2-binary"))
        )
    )
    results = tmp_path / "results"
    done = _bench(
        "compare", "--runner", "local", "--variants", "onnx,onnx-oip,onnx-oip-binary", "--variants-file",
        str(extra), "--levels", "1", "--duration", "3", "--warmup", "1", "--repeats", "1",
        "--startup-runs", "1", "--cold-runs", "0", "--open-runs", "0", "--ceiling-iterations", "5",
        "--no-slo-search", "--no-sweep", "--no-profiler", "--no-jpeg-draft", "--budget", "none",
        "--results-dir", str(results),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    latest = results / "latest"
    rows = {row["key"]: row["cells"] for row in json.loads((latest / "report.json").read_text())["rows"]}
    for variant in ("onnx-oip", "onnx-oip-binary"):
        assert rows["c1.rps"][variant]["median"] > 0 and rows["c1.failures"][variant]["median"] == 0, variant
        accuracy = json.loads((latest / "raw" / variant / "accuracy.json").read_text())
        exact = json.loads((latest / "raw" / "onnx" / "accuracy.json").read_text())
        assert accuracy["errors"] == 0 and accuracy["mistakes"] == exact["mistakes"], variant
