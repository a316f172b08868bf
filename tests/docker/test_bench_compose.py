"""The bench's compose runner end to end through a real engine: a short `python -m bench compare --runner
compose` whose report rows hold real container figures, the published-port handling, and the auto runner's
fallback when an image is missing. Each test uses a compose project of its own and checks it is gone after."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.registry import Variant, load_registry
from bench.report.aggregate import Table, build_table
from bench.runners import StartupError, resolve_runner_name
from bench.runners.compose import ComposeRunner
from bench.runners.engine import docker
from tests.fixtures.variants import compose_image_variable, image_variants

pytestmark = [pytest.mark.docker, pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(3600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANTS = tuple(image_variants())  # every variant with an image, from the registry
# Tiny but complete: every collector runs once per variant.
SHORT_COMPARE = [
    "--runner", "compose", "--profile", "quick", "--variants", ",".join(VARIANTS), "--payload", "photo_small",
    "--levels", "1", "--warmup", "1", "--duration", "3", "--repeats", "1", "--startup-runs", "2",
    "--cold-runs", "1", "--open-runs", "0", "--ceiling-iterations", "10",
]  # fmt: skip


def project_containers(project: str) -> list[str]:
    return docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}").stdout.split()


@pytest.fixture
def project(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A compose project name of this test's own, given to the runner through BENCH_COMPOSE_PROJECT."""
    name = "serving-lab-test-" + request.node.name.replace("_", "-")[:40].lower()
    monkeypatch.setenv("BENCH_COMPOSE_PROJECT", name)
    monkeypatch.setenv("RESTART_POLICY", "no")
    yield name
    leftovers = project_containers(name)
    ComposeRunner(project=name).close()
    assert not leftovers, f"the runner left containers behind in {name}: {leftovers}"


@pytest.fixture
def slim_images(built_images: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in VARIANTS:
        monkeypatch.setenv(compose_image_variable(image_variants()[name]), built_images[name]["slim"])
    return {name: built_images[name]["slim"] for name in VARIANTS}


def registered(name: str) -> Variant:
    return next(variant for variant in load_registry() if variant.name == name)


def figures(table: Table, key: str) -> dict[str, float]:
    row = table.row(key)
    missing = {variant: cell.text for variant, cell in row.cells.items() if cell.text is not None}
    assert not missing, f"{key}: {missing}"
    return {variant: cell.median for variant, cell in row.cells.items()}


def texts(table: Table, key: str) -> dict[str, str]:
    return {variant: cell.text or "" for variant, cell in table.row(key).cells.items()}


def test_short_compose_compare_reports_real_container_figures(
    project: str, slim_images: dict[str, str], tmp_path: Path
) -> None:
    # A .env-style port that differs from the registry's: the runner must publish and find the port itself.
    environment = {**os.environ, "TORCH_PORT": "1", "ONNX_PORT": "2"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "compare", *SHORT_COMPARE, "--results-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    run_dir = next(path for path in tmp_path.iterdir() if (path / "run.json").is_file())
    run = json.loads((run_dir / "run.json").read_text())
    assert run["runner"]["runner"] == "compose" and run["runner"]["project"] == project
    errors = sorted(str(path.relative_to(run_dir)) for path in run_dir.rglob("errors/*.json"))
    assert not errors, errors
    table = build_table(run_dir)

    image_mb = figures(table, "footprint.image_mb")
    assert all(size > 0 for size in image_mb.values()) and image_mb["onnx"] < image_mb["torch"]
    assert all(layers > 0 for layers in figures(table, "footprint.image_layers").values())
    # The fat (dev) image where the registry builds one ([variant.image] flavours); else the row says why.
    with_dev = [name for name in VARIANTS if "dev" in image_variants()[name].image.flavours]
    assert {"torch", "onnx"} <= set(with_dev), with_dev
    fat_row = table.row("footprint.fat_image_mb").cells
    for name in VARIANTS:
        if name in with_dev:
            assert fat_row[name].text is None and fat_row[name].median > image_mb[name], (name, fat_row[name])
        else:
            assert fat_row[name].text is not None and ":dev image" in fat_row[name].text, fat_row[name]
    for name, tools in texts(table, "footprint.image_tools").items():
        assert "sh" in tools.split(", ") and "gcc" not in tools, (name, tools)
    for name, tools in texts(table, "footprint.fat_image_tools").items():
        if name in with_dev:
            assert {"gcc", "make", "pip"} <= set(tools.split(", ")), (name, tools)

    assert all(seconds > 0 for seconds in figures(table, "startup.ready_s").values())
    assert all(ms > 0 for ms in figures(table, "startup.cold_first_request_ms").values())
    cpu = figures(table, "c1.cpu_mean")
    assert all(percent > 1 for percent in cpu.values()), cpu  # a loaded container is busy
    memory = figures(table, "c1.rss_mean_mb")
    assert all(mb > 10 for mb in memory.values()) and memory["onnx"] < memory["torch"], memory
    assert all(rps > 0 for rps in figures(table, "c1.rps").values())
    assert all(top1 > 50 for top1 in figures(table, "accuracy.top1").values())
    assert any("Compose runner" in note for note in table.notes)

    service_cores = run["pinning"]["service_cores"]
    for name in VARIANTS:
        container = json.loads(run_dir.joinpath("raw", name, "footprint.json").read_text())["container"]
        assert container["cpuset"] == (",".join(map(str, service_cores)) if service_cores else None)
        assert container["restart_policy"] == "no" and container["cpus"] > 0


def test_url_comes_from_the_port_the_engine_published(
    project: str, slim_images: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No compose_port_env: compose publishes where the environment (a .env) says, and the runner finds it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        moved_port = probe.getsockname()[1]
    monkeypatch.setenv("ONNX_PORT", str(moved_port))
    onnx = registered("onnx").model_copy(update={"compose_port_env": None})
    runner = ComposeRunner()
    try:
        service = runner.start_ready(onnx, log_path=tmp_path / "onnx.log")
        assert service.base_url == f"http://127.0.0.1:{moved_port}" and onnx.port != moved_port
        runner.stop(service)
        assert (tmp_path / "onnx.log").read_text().strip(), "stop() writes the container's log"
    finally:
        runner.close()


def test_a_taken_registered_port_moves_to_a_free_one(
    project: str, slim_images: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        onnx = registered("onnx").model_copy(update={"port": taken})
        runner = ComposeRunner()
        try:
            service = runner.start_ready(onnx, log_path=tmp_path / "onnx.log")
            published = int(service.base_url.rsplit(":", 1)[1])
            assert published != taken
            runner.stop(service)
        finally:
            runner.close()


def test_missing_image_sends_auto_to_local_and_stops_compose_early(
    project: str, slim_images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = "serving-lab/onnx-serving:not-built-by-anyone"
    monkeypatch.setenv("ONNX_IMAGE", missing)
    variants = [registered(name) for name in VARIANTS]
    choice = resolve_runner_name("auto", variants)
    assert choice.name == "local" and missing in choice.reason and "make docker-images" in choice.reason
    with pytest.raises(StartupError, match="not built"):
        ComposeRunner().prepare(variants)
    monkeypatch.setenv("ONNX_IMAGE", slim_images["onnx"])
    assert resolve_runner_name("auto", variants).name == "compose"
