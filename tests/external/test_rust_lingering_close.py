"""The early-413 checks of tests/e2e/test_lingering_close.py on the Rust service: a client that sends its
whole body before reading gets the 413 JSON error, not a reset; one that stops mid-body (chunked included,
which actix-web otherwise drains with no bound) is let go of within the lingering deadline (src/server.rs).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveService, start_variant
from tests.e2e.test_lingering_close import (
    CONNECTION_HEADERS,
    LIMIT,
    check_chunked_body_over_the_limit,
    check_content_length_over_the_limit,
    check_keep_alive_after_a_successful_predict,
    check_stalled_uploads_are_closed,
    check_urllib_gets_the_413,
)
from tests.external.conftest import RUST_VARIANT, require_cargo
from tests.fixtures.variants import startable_variants

pytestmark = pytest.mark.live

# src/server.rs client_disconnect_timeout: how long actix-web lingers after answering an unread body.
LINGER_SECONDS = 5.0


@pytest.fixture(scope="module")
def rust_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    require_cargo()
    service = start_variant(
        startable_variants()[RUST_VARIANT],
        tmp_path_factory.mktemp("rust-lingering"),
        name="rust-lingering",
        extra_env={"MAX_BODY_BYTES": str(LIMIT)},
    )
    yield service
    service.stop()


@pytest.mark.parametrize("connection", CONNECTION_HEADERS)
def test_content_length_over_the_limit_sent_whole_gets_the_413(
    rust_service: LiveService, connection: str
) -> None:
    check_content_length_over_the_limit(rust_service.base_url, LIMIT, connection)


@pytest.mark.parametrize("connection", CONNECTION_HEADERS)
def test_chunked_body_over_the_limit_sent_whole_gets_the_413(
    rust_service: LiveService, connection: str
) -> None:
    check_chunked_body_over_the_limit(rust_service.base_url, LIMIT, connection)


def test_urllib_gets_the_413(rust_service: LiveService) -> None:
    check_urllib_gets_the_413(rust_service.base_url, LIMIT)


def test_keep_alive_after_a_successful_predict_still_works(rust_service: LiveService) -> None:
    check_keep_alive_after_a_successful_predict(rust_service.base_url)


def test_clients_that_stop_mid_body_are_closed_after_the_linger_deadline(rust_service: LiveService) -> None:
    elapsed = check_stalled_uploads_are_closed(rust_service, LIMIT, LINGER_SECONDS + 3.0)
    assert elapsed > LINGER_SECONDS - 1.5, f"closed after {elapsed:.1f} s: before the linger deadline"
