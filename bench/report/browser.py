"""A report page opened in headless Chromium (Debian's ``chromium`` on PATH, driven by Playwright; no browser
download): every network request it makes, a full-page screenshot and the DOM facts of the verdict and plots.

Anything but the file:// document itself and data: URLs counts as a network request. Requests are recorded,
and only loopback ones are let through: a page that names an outside host never reaches it.

    python -m bench.report.browser results/latest/report.html [--screenshot report.png]
"""

from __future__ import annotations

import argparse
import ipaddress
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Route, WebSocketRoute, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

TIMEOUT_MS = 30_000  # every wait: launch, navigation, image decoding, network idle, screenshot
VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]  # --user-data-dir: a fresh temporary profile per check, removed afterwards
_IMAGES_COMPLETE = "() => Array.from(document.images).every((image) => image.complete)"
_DOM_FACTS = """() => {
  const verdict = document.querySelector("table#verdict");
  const glance = document.querySelector("img#glance");
  return {
    title: document.title,
    verdict_rows: verdict ? verdict.querySelectorAll(":scope > tbody > tr").length : null,
    glance_width: glance ? glance.naturalWidth : null,
    plot_widths: Array.from(document.querySelectorAll("img.plot"), (image) => image.naturalWidth),
  };
}"""


@dataclass(frozen=True)
class BrowserCheck:
    url: str
    title: str
    requests: tuple[str, ...]  # URLs the page asked for, in order: empty for a self-contained page
    screenshot: Path
    verdict_rows: int | None  # <tr> in <table id="verdict"><tbody>; None without such a table
    plot_images: int  # <img class="plot"> in the DOM
    plot_images_decoded: int  # ... of which naturalWidth > 0
    glance_present: bool  # <img id="glance">
    glance_decoded: bool
    network_idle: bool  # no request in flight for 500 ms before the facts were read (False: timed out)


def chromium_path() -> str | None:
    return shutil.which("chromium")


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_page(html: Path, screenshot: Path, executable: str | None = None) -> BrowserCheck:
    """Open ``html`` in headless Chromium, record its requests, screenshot it whole to ``screenshot``."""
    executable = executable or chromium_path()
    if executable is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    document = html.resolve().as_uri()
    requests: list[str] = []

    def record(url: str) -> None:
        if url != document and not url.startswith("data:"):
            requests.append(url)

    def guard(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http:", "https:")) and not _is_loopback(url):
            route.abort("blockedbyclient")
        else:
            route.fallback()

    def guard_socket(socket: WebSocketRoute) -> None:
        record(socket.url)  # a WebSocket fires no request event
        if _is_loopback(socket.url):
            socket.connect_to_server()

    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
            timeout=TIMEOUT_MS,
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            context.on("request", lambda request: record(request.url))
            context.route("**/*", guard)
            context.route_web_socket("**/*", guard_socket)
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(document, wait_until="load")
            try:
                page.wait_for_load_state("networkidle")
                idle = True
            except PlaywrightTimeout:
                idle = False
            page.wait_for_function(_IMAGES_COMPLETE)
            facts = page.evaluate(_DOM_FACTS)
            page.screenshot(path=screenshot, full_page=True)
        finally:
            context.close()
    plots = [int(width) for width in facts["plot_widths"]]
    glance = facts["glance_width"]
    return BrowserCheck(
        url=document,
        title=str(facts["title"]),
        requests=tuple(requests),
        screenshot=screenshot,
        verdict_rows=facts["verdict_rows"],
        plot_images=len(plots),
        plot_images_decoded=sum(width > 0 for width in plots),
        glance_present=glance is not None,
        glance_decoded=bool(glance),
        network_idle=idle,
    )


def capture_if_available(html: Path, png: Path) -> BrowserCheck | None:
    """The report's screenshot ``png`` where a chromium is on PATH; None (nothing done) where none is."""
    executable = chromium_path()
    return None if executable is None else check_page(html, png, executable)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report.browser", description="Open a report page in headless Chromium."
    )
    parser.add_argument("html", type=Path, help="the report.html to open")
    parser.add_argument("--screenshot", type=Path, help="the full-page PNG (default: beside the page, .png)")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        parser.error(f"{args.html} is not a file")
    check = check_page(args.html, args.screenshot or args.html.with_suffix(".png"))
    for name, value in asdict(check).items():
        print(f"{name}: {list(value) if isinstance(value, tuple) else value}")
    if check.requests:
        print(f"the page made {len(check.requests)} network request(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
