"""End to end: variants from outside the repo, added by configuration only, benchmarked like the others.

The test writes a tiny predict service (stdlib HTTP server + Pillow decode) and a variants file to a temp
folder: one variant the bench starts itself (raw bytes), one it starts with JSON payloads, and one already
running that the registry gives by URL. Its "model" answers ``image width % 10``, so accuracy over HTTP is
known exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

pytestmark = [pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]

SERVICE_SOURCE = """
import base64, io, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from PIL import Image

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path in ("/ready", "/health", "/"):
            self._send(200, {"status": "ok"})
        elif self.path == "/info":
            self._send(200, {"variant": "stdlib", "model_hash": "feedc0ffee12"})
        else:
            self._send(404, {"error": {"code": "not_found", "message": self.path}})

    def do_POST(self):
        start = time.perf_counter()
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            if self.headers.get("Content-Type", "").startswith("application/json"):
                data = base64.b64decode(json.loads(data)["image"])
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception as error:
            return self._send(400, {"error": {"code": "bad_image", "message": str(error)}})
        index = image.width % 10
        total = (time.perf_counter() - start) * 1000
        top = {"label": str(index), "class_index": index, "confidence": 1.0}
        self._send(200, {**top, "top_k": [top], "variant": "stdlib", "model_hash": "feedc0ffee12",
                         "timings_ms": {"decode": total, "preprocess": 0.0, "inference": 0.0, "total":
                         total}})

if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

# (width, label): the service answers width % 10, so 3 of these 4 are right.
ACCURACY_IMAGES = [(30, 0), (31, 1), (32, 5), (43, 3)]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def outside(tmp_path: Path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "service.py").write_text(SERVICE_SOURCE)
    Image.new("RGB", (640, 480), (120, 30, 200)).save(folder / "photo.jpg", quality=90)
    digits = folder / "digits"
    digits.mkdir()
    entries = []
    for index, (width, label) in enumerate(ACCURACY_IMAGES):
        Image.new("RGB", (width, 24), (index * 40, 0, 0)).save(digits / f"{index}.png")
        entries.append({"file": f"{index}.png", "label": label, "label_name": str(label)})
    (digits / "manifest.json").write_text(json.dumps({"images": entries}))

    url_port = _free_port()
    running = subprocess.Popen([sys.executable, str(folder / "service.py"), str(url_port)], cwd=folder)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{url_port}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    (folder / "variants.toml").write_text(
        f"""
[[variant]]
name = "stdlib-raw"
baseline = true
port = {_free_port()}
payload_format = "raw"
artifacts = ["service.py"]
[variant.local]
command = ["{{python}}", "service.py", "{{port}}"]

[[variant]]
name = "stdlib-json"
port = {_free_port()}
payload_format = "json"
[variant.local]
command = ["{{python}}", "service.py", "{{port}}"]

[[variant]]
name = "stdlib-url"
url = "http://127.0.0.1:{url_port}"
payload_format = "raw"
"""
    )
    yield folder
    running.terminate()
    running.wait(timeout=10)


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BENCH_VARIANTS_FILES": ""},
    )


def test_external_variants_are_benchmarked_end_to_end(outside: Path) -> None:
    results = outside / "results"
    done = _bench(
        "compare",
        "--no-builtin",
        "--variants-file",
        str(outside / "variants.toml"),
        "--runner",
        "local",
        "--payload",
        str(outside / "photo.jpg"),
        "--levels",
        "1,4",
        "--duration",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "2",
        "--startup-runs",
        "2",
        "--cold-runs",
        "1",
        "--accuracy-manifest",
        str(outside / "digits" / "manifest.json"),
        "--results-dir",
        str(results),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    latest = results / "latest"
    assert latest.is_symlink()
    report = json.loads((latest / "report.json").read_text())
    variants = ["stdlib-raw", "stdlib-json", "stdlib-url"]
    assert report["variants"] == variants and report["baseline"] == "stdlib-raw"
    rows = {row["key"]: row["cells"] for row in report["rows"]}

    for users in (1, 4):
        for variant in variants:
            assert rows[f"c{users}.rps"][variant]["median"] > 5, (users, variant)
            assert rows[f"c{users}.rps"][variant]["n"] == 2
            p50, p99, worst = (rows[f"c{users}.{key}"][variant]["median"] for key in ("p50", "p99", "max"))
            assert 0 < p50 <= p99 <= worst < 5000
            assert rows[f"c{users}.failures"][variant]["median"] == 0
            assert rows[f"c{users}.generator_cpu"][variant]["median"] > 0
        for variant in ("stdlib-raw", "stdlib-json"):
            assert rows[f"c{users}.cpu_mean"][variant]["median"] > 0
            assert 5 < rows[f"c{users}.rss_peak_mb"][variant]["median"] < 500
        assert rows[f"c{users}.cpu_mean"]["stdlib-url"]["text"].startswith("n/a (url variant")
        assert rows[f"c{users}.rps"]["stdlib-json"]["ratio_to_baseline"] > 0
    # JSON bodies are base64: a third larger than the raw bytes.
    sent_ratio = rows["c1.sent_mb_s"]["stdlib-json"]["median"] / rows["c1.rps"]["stdlib-json"]["median"]
    raw_ratio = rows["c1.sent_mb_s"]["stdlib-raw"]["median"] / rows["c1.rps"]["stdlib-raw"]["median"]
    assert sent_ratio / raw_ratio == pytest.approx(4 / 3, rel=0.02)

    for variant in ("stdlib-raw", "stdlib-json"):
        assert 0 < rows["startup.ready_s"][variant]["median"] < 30
        assert rows["startup.ready_s"][variant]["n"] == 2
        assert rows["startup.cold_first_request_ms"][variant]["n"] == 1
    assert rows["startup.ready_s"]["stdlib-url"]["text"].startswith("n/a (url variant")
    for variant in variants:
        assert rows["accuracy.top1"][variant]["median"] == 75.0
        assert rows["info.model_hash"][variant]["text"] == "feedc0ffee12"
        assert rows["footprint.image_mb"][variant]["text"].startswith("n/a (")
    assert rows["footprint.artifacts_mb"]["stdlib-raw"]["median"] == pytest.approx(
        len(SERVICE_SOURCE.encode()) / 1e6
    )
    for cells in rows.values():
        for variant in variants:
            cell = cells[variant]
            assert cell["median"] is not None or cell["text"], "every cell is a figure or says why not"

    raw_dir = latest / "raw" / "stdlib-raw" / "load" / "r1-c4"
    for name in (
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "locust.json",
        "latencies.json",
        "window.json",
        "resources.json",
    ):
        assert (raw_dir / name).is_file(), name

    # `report` regenerates the same table from the raw data alone.
    (latest / "report.json").unlink()
    regenerated = _bench("report", str(latest))
    assert regenerated.returncode == 0, regenerated.stderr[-3000:]
    assert json.loads((latest / "report.json").read_text())["rows"] == report["rows"]
    assert "| metric | unit | stdlib-raw (baseline) | stdlib-json | stdlib-url |" in regenerated.stdout
