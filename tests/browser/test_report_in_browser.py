"""The HTML report of a recorded run opened in a real headless Chromium: it loads nothing from the network,
every plot decodes, the verdict has one row per variant, and its full-page screenshot (kept as report.png
beside report.html) is a real picture. The network check itself is shown to fail on a page that asks a local
server.

Outside CI these tests skip when no ``chromium`` is on PATH; with ``CI`` set they fail (.ci/run installs it).
"""

from __future__ import annotations

import http.server
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from bench.report import render_report
from bench.report.browser import BrowserCheck, capture_if_available, check_page, chromium_path, main
from bench.results import RunDir

pytestmark = pytest.mark.browser

RUN_DATA = Path(__file__).resolve().parents[1] / "data" / "bench_run_payloads"


def require_chromium() -> str:
    path = chromium_path()
    if path is not None:
        return path
    message = "no chromium on PATH (Debian: apt-get install --no-install-recommends chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; the browser tests never skip in CI")
    pytest.skip(message)


class _PlotImages(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and "plot" in (dict(attrs).get("class") or "").split():
            self.count += 1


@dataclass(frozen=True)
class OpenedReport:
    run_dir: RunDir
    variants: list[str]
    check: BrowserCheck
    temp_left: list[Path]  # what the check left in its temporary folder


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> OpenedReport:
    executable = require_chromium()
    results = tmp_path_factory.mktemp("results")
    run_dir = RunDir(results / "run")
    shutil.copytree(RUN_DATA, run_dir.root)
    table = render_report(run_dir)
    temp = results / "tmp"
    temp.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(temp))
        check = check_page(run_dir.report_file("html"), run_dir.report_file("png"), executable)
    return OpenedReport(run_dir, list(table.variants), check, list(temp.iterdir()))


def test_the_report_makes_no_network_request(opened: OpenedReport) -> None:
    assert opened.check.requests == ()
    assert opened.check.network_idle
    assert opened.check.title.startswith("serving-lab comparison")


def test_the_screenshot_is_a_real_full_page_picture(opened: OpenedReport) -> None:
    png = opened.run_dir.report_file("png")
    assert opened.check.screenshot == png
    assert png.parent == opened.run_dir.report_file("html").parent
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width == 1280  # the viewport's
        assert 800 <= height <= 100_000  # the whole page, taller than one screen
        assert image.convert("RGB").getcolors(maxcolors=1) is None, "the screenshot is a single colour"


def test_every_plot_is_in_the_page_and_decoded(opened: OpenedReport) -> None:
    parser = _PlotImages()
    parser.feed(opened.run_dir.report_file("html").read_text())
    plot_files = sorted(opened.run_dir.plots_dir.glob("*.png"))
    assert plot_files
    assert opened.check.plot_images == parser.count == len(plot_files)
    assert opened.check.plot_images_decoded == opened.check.plot_images


def test_the_verdict_has_one_row_per_variant(opened: OpenedReport) -> None:
    assert opened.check.verdict_rows is not None, 'no <table id="verdict"> in the report'
    assert opened.check.verdict_rows == len(opened.variants) == 2


def test_the_glance_chart_is_shown(opened: OpenedReport) -> None:
    assert opened.check.glance_present, 'no <img id="glance"> in the report'
    assert opened.check.glance_decoded


def test_the_browser_profile_is_removed(opened: OpenedReport) -> None:
    assert opened.temp_left == []


@pytest.fixture
def local_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on a free loopback port, in a thread: its base URL and the paths it was asked."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: #333; }")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _page_asking(tmp_path: Path, url: str) -> Path:
    page = tmp_path / "page.html"
    page.write_text(
        f'<!doctype html><html><head><title>asks</title><link rel="stylesheet" href="{url}/x.css">'
        '<link rel="stylesheet" href="http://outside.invalid/y.css"></head><body><p>hello</p></body></html>'
    )
    return page


def test_the_network_check_sees_a_request(tmp_path: Path, local_server: tuple[str, list[str]]) -> None:
    executable = require_chromium()
    base, asked = local_server
    check = check_page(_page_asking(tmp_path, base), tmp_path / "page.png", executable)
    assert f"{base}/x.css" in check.requests
    assert (
        "http://outside.invalid/y.css" in check.requests
    )  # recorded, and blocked before leaving the machine
    assert asked == ["/x.css"]
    assert check.title == "asks"
    assert check.verdict_rows is None
    assert not check.glance_present


def test_the_cli_fails_on_a_page_that_asks_the_network(
    tmp_path: Path, local_server: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    require_chromium()
    base, _ = local_server
    page = _page_asking(tmp_path, base)
    assert main([str(page), "--screenshot", str(tmp_path / "shot.png")]) == 1
    assert f"{base}/x.css" in capsys.readouterr().out
    assert (tmp_path / "shot.png").is_file()


def test_capture_does_nothing_without_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    page = _page_asking(tmp_path, "http://127.0.0.1:9")
    assert capture_if_available(page, tmp_path / "report.png") is None
    assert not (tmp_path / "report.png").exists()
