"""The bad-input corpus against every live variant: each case a 4xx JSON error of the contract's shape, never
a 5xx; no worker dies or is replaced, ``/ready`` stays 200 and the process tree's RSS stays bounded.

The corpus runs several times in a row: RSS after the first pass against the baseline bounds what the bad
inputs cost, and the later passes against the first show that nothing accumulates.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from serving_core.settings import ServingSettings
from tests.fixtures.bad_inputs import BadRequest, bad_input_corpus
from tests.fixtures.errors import error_body_problem

pytestmark = [pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
DIGIT = (REPO_ROOT / "images/digits/00000.png").read_bytes()
PASSES = 3
MiB = 1024 * 1024
# Generous: a pass may leave a freed allocation in the allocator's pools, but the tree must not balloon.
MAX_GROWTH_OVER_BASELINE = 0.5
MAX_GROWTH_BETWEEN_PASSES = 0.1


def send(client: httpx.Client, case: BadRequest) -> httpx.Response:
    return client.request(case.method, case.path, content=case.body, headers=case.headers)


def problem_with(case: BadRequest, response: httpx.Response) -> str | None:
    """What is wrong with the answer to ``case``, or None."""
    if response.status_code != case.expected_status:
        return f"status {response.status_code}, expected {case.expected_status}: {response.text[:300]}"
    if case.item_error is not None:
        codes = [(item.get("error") or {}).get("code") for item in response.json().get("results", [])]
        return None if case.item_error in codes else f"no batch item with error {case.item_error}: {codes}"
    return error_body_problem(response)


def _limits(info: dict) -> tuple[int, int]:
    defaults = ServingSettings.model_fields
    return (
        info.get("max_body_bytes", defaults["max_body_bytes"].default),
        info.get("max_batch_items", defaults["max_batch_items"].default),
    )


def test_every_bad_input_gets_a_4xx_json_error_and_nothing_breaks(service) -> None:
    with httpx.Client(base_url=service.base_url, timeout=60) as client:
        info = client.get("/info").json()
        num_classes = len(info["model_card"]["labels"])
        max_body_bytes, max_batch_items = _limits(info)
        for _ in range(3):  # the baseline includes what serving good requests allocates
            assert (
                client.post("/predict", content=DIGIT, headers={"content-type": "image/png"}).status_code
                == 200
            )
        pids_before = service.process_ids() if service.local else set()
        rss = [service.resident_bytes()] if service.local else []

        outcomes: dict[str, str] = {}
        problems: list[str] = []
        for run in range(PASSES):
            # Rebuilt every pass: a chunked body is a generator that can be sent once.
            for case in bad_input_corpus(num_classes, max_body_bytes, max_batch_items):
                try:
                    response = send(client, case)
                except httpx.HTTPError as exc:
                    problems.append(f"pass {run} {case.name}: no response ({type(exc).__name__}: {exc})")
                    continue
                problem = problem_with(case, response)
                if problem:
                    problems.append(f"pass {run} {case.name}: {problem}")
                code = (response.json().get("error") or {}).get("code", "-") if problem is None else "!"
                outcomes[case.name] = f"{response.status_code} {code}"
            if service.local:
                rss.append(service.resident_bytes())

        print(f"\n{service.name}: {len(outcomes)} bad-input cases x {PASSES} passes")
        for name, outcome in outcomes.items():
            print(f"  {name:34s} {outcome}")
        assert not problems, "\n".join(problems)

        assert client.get("/ready").status_code == 200
        assert (
            client.post("/predict", content=DIGIT, headers={"content-type": "image/png"}).status_code == 200
        )
    if service.local:
        print(
            f"{service.name}: process-tree RSS MiB baseline/after each pass: {[round(r / MiB) for r in rss]}"
        )
        assert service.process_ids() == pids_before, "a worker died and was replaced during the corpus"
        assert rss[1] <= rss[0] * (1 + MAX_GROWTH_OVER_BASELINE), rss
        assert rss[-1] - rss[1] <= rss[0] * MAX_GROWTH_BETWEEN_PASSES, rss
