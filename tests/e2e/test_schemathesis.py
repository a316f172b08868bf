"""schemathesis against each live service's own ``/openapi.json``: no server errors, every response (status,
content type, headers, body) as the document says, schema-violating requests refused, auth enforced.

Every check runs except ``positive_data_acceptance``: a schema can say "a base64 string", not "a base64 string
of a decodable image", so schema-valid random bodies rightly get a 400.

The run is bounded (examples per operation) and seeded, so CI is reproducible; set ``SCHEMATHESIS_SEED`` or
``SCHEMATHESIS_MAX_EXAMPLES`` to explore further.
"""

from __future__ import annotations

import os
import subprocess
import sys
from xml.etree import ElementTree

import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "100")
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261121")
RUN_TIMEOUT_SECONDS = 300
REQUIRED_OPERATIONS = {
    "POST /predict",
    "POST /predict/batch",
    "POST /admin/reload",
    "GET /ready",
    "GET /info",
}


def test_service_matches_its_own_openapi_document(service, tmp_path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{service.base_url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        "--no-color",
    ]
    if service.admin_token:
        command += ["--header", f"Authorization: Bearer {service.admin_token}"]
    completed = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )
    summary = completed.stdout[completed.stdout.find("SUMMARY") :] or completed.stdout[-3000:]
    print(f"\n{service.name}: schemathesis exit {completed.returncode}\n{summary}")
    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
    (report,) = tmp_path.glob("junit-*.xml")
    tested = {case.get("name") for case in ElementTree.parse(report).iter("testcase")}
    assert tested >= REQUIRED_OPERATIONS, f"schemathesis did not test {REQUIRED_OPERATIONS - tested}"
