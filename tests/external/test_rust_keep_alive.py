"""The keep-alive checks of tests/e2e/test_keep_alive.py on the Rust service: KEEP_ALIVE_TIMEOUT reaches
actix-web (src/server.rs), and its default outlasts actix-web's own 5 s."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import start_variant
from tests.e2e.test_keep_alive import (
    SHORT_TIMEOUT_S,
    check_an_idle_connection_outlasts_the_library_default,
    check_the_server_closes_an_idle_connection_after,
)
from tests.external.conftest import RUST_VARIANT, require_cargo
from tests.fixtures.variants import startable_variants

pytestmark = pytest.mark.live


@pytest.mark.parametrize("timeout", [SHORT_TIMEOUT_S, None], ids=["short", "default"])
def test_the_rust_service_keeps_an_idle_connection_for_its_keep_alive_timeout(
    tmp_path: Path, timeout: int | None
) -> None:
    require_cargo()
    extra_env = {"KEEP_ALIVE_TIMEOUT": str(timeout)} if timeout else {}
    service = start_variant(
        startable_variants()[RUST_VARIANT], tmp_path, name="rust-keep-alive", extra_env=extra_env
    )
    try:
        if timeout:
            check_the_server_closes_an_idle_connection_after(service.base_url, timeout)
        else:
            check_an_idle_connection_outlasts_the_library_default(service.base_url)
    finally:
        service.stop()
