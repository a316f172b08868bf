"""The Rust service serves a snapshot of the predict contract's OpenAPI document
(external/rust_onnx_serving/openapi.json, exported from the Python services' schemas by
serving_core.contract_document): it must still equal what onnx_serving publishes for that protocol, apart
from the title. When this fails, the contract changed: export the document again (see that folder's README)
and check that the Rust service still matches it.
"""

from __future__ import annotations

import json
from pathlib import Path

from serving_core.contract_document import contract_document

SNAPSHOT = Path(__file__).resolve().parents[2] / "external" / "rust_onnx_serving" / "openapi.json"


def test_the_rust_services_openapi_snapshot_is_the_predict_contracts_document() -> None:
    from onnx_serving.app import app

    published = json.loads(json.dumps(contract_document(app, ["predict"])))
    snapshot = json.loads(SNAPSHOT.read_text())
    for document in (published, snapshot):
        document["info"].pop("title", None)
    assert snapshot["paths"].keys() == published["paths"].keys()
    assert snapshot == published
