"""Hot reload under steady load, on each variant with two workers: ``/admin/reload`` onto a new artifact at
the configured path loses no request and every worker moves to the new model hash; then a corrupt and a
wrong-shape artifact are refused with a reason (and no path) while the model already loaded keeps serving.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from model_zoo.card import ModelCard, card_path_for, sha256_of
from model_zoo.mobilenet_v3 import mobilenet_v3_small
from tests.fixtures.errors import error_body_problem
from tests.fixtures.load import Outcome, Payload, SteadyLoad
from tests.fixtures.variants import local_variants

pytestmark = [pytest.mark.live, pytest.mark.slow]

IMAGES = Path(__file__).resolve().parents[2] / "images"
CLIENTS = 4
WORKERS = 2
ONNX_CARD = "model.card.json"


def _replace(path: Path, data: bytes) -> None:
    """Write beside, then rename over: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


@dataclass
class Artifacts:
    """A private copy of a variant's artifacts at the path the service is configured with, and how to put
    other (good or bad) artifacts there between reloads.
    """

    variable: str
    path: Path
    refusals: dict[str, tuple[Callable[[], None], str]]
    """name -> (puts the bad artifact in place, a phrase the refusal must contain)."""
    renew: Callable[[], None]
    """Puts a valid artifact with different bytes (a new model hash) in place."""


def _torch_artifacts(source: Path, directory: Path) -> Artifacts:
    checkpoint = directory / source.name
    shutil.copy(source, checkpoint)
    shutil.copy(card_path_for(source), card_path_for(checkpoint))
    card = ModelCard.load(card_path_for(source))

    def install(state_dict: dict[str, torch.Tensor] | None, raw: bytes | None = None) -> None:
        staged = directory / "staged.pt"
        if state_dict is not None:
            torch.save(state_dict, staged)
        else:
            staged.write_bytes(raw or b"")
        # The card names the checkpoint's sha256; keep it true so the checkpoint itself is what gets judged.
        updated = card.model_copy(update={"weights_sha256": sha256_of(staged)})
        _replace(checkpoint, staged.read_bytes())
        _replace(card_path_for(checkpoint), updated.model_dump_json(indent=2).encode())

    def renew() -> None:
        state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state_dict["classifier.3.bias"] = state_dict["classifier.3.bias"] + 1e-4
        install(state_dict)

    twelve_classes = mobilenet_v3_small(num_classes=12).state_dict()
    return Artifacts(
        "MODEL_CHECKPOINT",
        checkpoint,
        {
            "corrupt": (lambda: install(None, b"not a checkpoint " * 64), "load"),
            "twelve_classes_with_ten_class_card": (lambda: install(twelve_classes), "size mismatch"),
        },
        renew,
    )


def _twelve_class_onnx() -> bytes:
    """A tiny graph with the fused artifact's interface but 12 output classes (mean colour -> softmax)."""
    weights = helper.make_tensor(
        "weights", TensorProto.FLOAT, [3, 12], np.linspace(-1, 1, 36, dtype=np.float32).tolist()
    )
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["pixels", "axes"], ["colour"], keepdims=0),
            helper.make_node("MatMul", ["colour", "weights"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "twelve_classes",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", "height", "width", 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 12])],
        initializer=[weights, helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _onnx_artifacts(source: Path, directory: Path) -> Artifacts:
    model_path = directory / source.name
    for name in (source.name, ONNX_CARD, "manifest.json"):
        if (source.parent / name).exists():
            shutil.copy(source.parent / name, directory / name)
    raw_export = source.with_name("classifier.onnx")

    def renew() -> None:
        model = onnx.load(model_path)
        model.doc_string = f"renewed at {time.time()}"  # same graph, other bytes: a new model hash
        _replace(model_path, model.SerializeToString())

    refusals = {
        "corrupt": (lambda: _replace(model_path, b"not an onnx model " * 64), "protobuf"),
        "twelve_classes_with_ten_class_card": (
            lambda: _replace(model_path, _twelve_class_onnx()),
            "12 classes",
        ),
    }
    if raw_export.is_file():  # the unfused export: float NCHW input, the wrong interface
        refusals["raw_export_without_preprocessing"] = (
            lambda: _replace(model_path, raw_export.read_bytes()),
            "uint8",
        )
    return Artifacts("ONNX_MODEL", model_path, refusals, renew)


def _openvino_artifacts(source: Path, directory: Path) -> Artifacts:
    """The same kind of file as ONNX_MODEL (a fused ONNX graph); only OpenVINO's reason for a corrupt one
    differs from ONNX Runtime's."""
    artifacts = _onnx_artifacts(source, directory)
    install, _ = artifacts.refusals["corrupt"]
    artifacts.refusals["corrupt"] = (install, f"cannot read {source.name} as an ONNX model")
    return artifacts


# How to renew and break a served artifact, by the variable that names it (a variant's [variant.tests]
# artifact_env); the variants come from the registry.
ARTIFACT_KINDS = {
    "MODEL_CHECKPOINT": _torch_artifacts,
    "ONNX_MODEL": _onnx_artifacts,
    "OPENVINO_MODEL": _openvino_artifacts,
}
VARIANTS = list(local_variants())


def _reload(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/admin/reload", headers={"authorization": f"Bearer {token}"}, timeout=120)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_reload_under_load_loses_nothing_and_bad_artifacts_are_refused(
    variant: str, start_registered_variant, default_artifact, tmp_path: Path
) -> None:
    variable = local_variants()[variant].tests.artifact_env
    if variable not in ARTIFACT_KINDS:
        pytest.skip(f"{variant}: no way to renew or break its artifact ({variable}) is known here")
    artifacts = ARTIFACT_KINDS[variable](default_artifact(variable), tmp_path)
    service = start_registered_variant(
        variant, name=f"{variant}-reload", workers=WORKERS, env={variable: str(artifacts.path)}
    )
    payload = Payload.image_file(IMAGES / "digits/00000.png")
    refusals: dict[str, str] = {}
    with (
        httpx.Client(base_url=service.base_url, timeout=60) as admin,
        SteadyLoad(service.base_url, payload, CLIENTS) as load,
    ):
        original = admin.get("/ready").json()["model_hash"]
        load.wait_for(20)

        artifacts.renew()
        response = _reload(admin, service.admin_token)
        assert response.status_code == 200, response.text
        renewed = response.json()["model_hash"]
        assert renewed != original and response.json()["previous_model_hash"] == original
        switched_at = len(load.outcomes)
        service.wait_for_model_everywhere(renewed)
        everywhere_at = len(load.outcomes)
        load.wait_for(everywhere_at + 20)

        for name, (install, reason) in artifacts.refusals.items():
            install()
            refused = _reload(admin, service.admin_token)
            assert refused.status_code == 422, f"{name}: {refused.text}"
            assert error_body_problem(refused) is None, error_body_problem(refused)
            error = refused.json()["error"]
            assert error["code"] == "reload_failed", error
            assert reason.lower() in error["message"].lower(), f"{name}: {error['message']}"
            assert str(tmp_path) not in error["message"]
            refusals[name] = error["message"]
            assert admin.get("/ready").json()["model_hash"] == renewed
        refused_at = len(load.outcomes)
        load.wait_for(refused_at + 20)
    outcomes: list[Outcome] = load.outcomes

    failed = [o for o in outcomes if o.status != 200]
    hashes = [o.model_hash for o in outcomes]
    print(
        f"\n{variant}: {len(outcomes)} requests from {CLIENTS} clients over {WORKERS} workers, "
        f"{len(failed)} failed; {hashes.count(original)} answered by {original}, {hashes.count(renewed)} by "
        f"{renewed} (first new-hash response at #{hashes.index(renewed)}, reload returned at #{switched_at})"
    )
    for name, message in refusals.items():
        print(f"  refused {name}: {message[:160]}")
    assert not failed, failed[:5]
    assert set(hashes) == {original, renewed}
    # Each client may have had one request running on the old model when the last worker switched.
    assert all(h == renewed for h in hashes[everywhere_at + CLIENTS :]), (
        "a worker went back or never switched"
    )
    assert hashes[refused_at:], "no request ran after the refused reloads"
