"""serving_core.contract_document: the document of some of the protocols a serving_core app speaks."""

from __future__ import annotations

import json

import pytest

from serving_core.contract_document import PROTOCOLS, contract_document, main, protocol_of


@pytest.fixture(scope="module")
def app():
    from onnx_serving.app import app

    return app


def test_every_protocol_is_the_apps_own_document(app) -> None:
    assert contract_document(app) == app.openapi()


def test_the_predict_contract_alone_has_no_oip_path_or_schema(app) -> None:
    document = contract_document(app, ["predict"])
    paths = set(document["paths"])
    assert {"/predict", "/predict/batch", "/infer", "/infer/batch", "/info", "/ready"} <= paths
    assert not [path for path in paths if path.startswith("/v2")]
    assert "InferenceRequest" not in json.dumps(document) and "InferenceResponse" not in json.dumps(document)
    oip = contract_document(app, ["kserve-v2"])
    assert set(oip["paths"]) == {path for path in app.openapi()["paths"] if protocol_of(path) == "kserve-v2"}
    assert set(oip["paths"]).isdisjoint(paths) and set(oip["paths"]) | paths == set(app.openapi()["paths"])


def test_protocol_of_reads_the_prefix_not_a_substring() -> None:
    assert protocol_of("/v2") == protocol_of("/v2/models/m/infer") == "kserve-v2"
    assert protocol_of("/v2x") == protocol_of("/predict") == "predict"


def test_an_unknown_protocol_is_refused(app) -> None:
    with pytest.raises(ValueError, match="unknown protocols"):
        contract_document(app, ["grpc"])
    assert set(PROTOCOLS) == {"predict", "kserve-v2"}


def test_the_command_writes_the_document(capsys: pytest.CaptureFixture[str], app) -> None:
    assert main(["onnx_serving.app:app", "--protocols", "predict"]) == 0
    assert json.loads(capsys.readouterr().out) == contract_document(app, ["predict"])
