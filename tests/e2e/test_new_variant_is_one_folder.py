"""Proof that a variant is one folder plus one registry entry: a throwaway ``const_serving`` package (a
numpy Predictor, its settings, its entry point and its requirements) is written to a temp folder, with a
variants file beside it, and nothing else is touched. The conformance suite (tests/contract) then passes
against it, started by the suite itself from the registry entry, and a smoke ``python -m bench compare``
measures it end to end (HTTP load, cold starts, accuracy, the in-process ceiling). A second entry that
`requires` a missing command is skipped with the reason and listed in ``raw/skipped_variants.json``; a
``contract_skips`` pattern skips one test of the suite with its reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.live, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
CARD = REPO_ROOT / "model_zoo" / "default" / "mobilenet_v3_small_digits.card.json"
VARIANTS_ENV = "BENCH_VARIANTS_FILES"
SKIP_REASON = "shows that contract_skips skips a test with its reason"

# The four files of a Python variant, as README's "Adding a variant" says (plus an empty __init__.py).
VARIANT_FILES = {
    "settings.py": """
from pathlib import Path

from pydantic import AliasChoices, Field

from serving_core.settings import ServingSettings


class ConstServingSettings(ServingSettings):
    variant: str = "const"
    port: int = Field(8009, ge=0, le=65535, validation_alias=AliasChoices("CONST_PORT", "PORT", "port"))
    workers: int = Field(1, ge=1, validation_alias=AliasChoices("CONST_WORKERS", "WORKERS", "workers"))
    const_card: Path = Path("card.json")
""",
    "predictor.py": '''
import hashlib
import time

import numpy as np

from model_zoo.card import ModelCard
from serving_core.predictor import BatchOutput, LoadedModel, Predictor


class ConstPredictor(Predictor):
    """No model: the class is the image's mean brightness in tenths, with a softmax over fixed logits."""

    runtime = "numpy"

    def _load(self) -> LoadedModel:
        card = ModelCard.load(self.settings.const_card)
        digest = hashlib.sha256(self.settings.const_card.read_bytes()).hexdigest()
        return LoadedModel(card=card, artifact=self.settings.const_card, artifact_sha256=digest)

    def _predict(self, images):
        started = time.perf_counter()
        classes = len(self.loaded.card.labels)
        logits = np.zeros((len(images), classes), dtype=np.float64)
        for row, image in enumerate(images):
            logits[row, int(image.mean() / 25.6) % classes] = 4.0
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return BatchOutput(probabilities.astype(np.float32), 0.0, (time.perf_counter() - started) * 1000.0)

    def _versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}
''',
    "app.py": """
from const_serving.predictor import ConstPredictor
from const_serving.settings import ConstServingSettings
from serving_core.app import create_app

app = create_app(ConstPredictor, ConstServingSettings())
""",
    "__main__.py": """
from const_serving.settings import ConstServingSettings
from serving_core.server import serve

if __name__ == "__main__":
    serve("const_serving.app:app", ConstServingSettings())
""",
    "requirements.txt": f"-r {REPO_ROOT}/requirements/serving-common.txt\n",
    "__init__.py": "",
}

VARIANTS_TOML = """
root = "."

[[variant]]
name = "const"
port = 8009
payload_format = "json"
requirements = "const_serving/requirements.txt"
artifacts = ["{card}"]
contract_skips = {{ "test_request_id_is_*" = "{skip_reason}" }}

[variant.local]
command = ["{{python}}", "-m", "const_serving"]
env = {{ HOST = "127.0.0.1", CONST_PORT = "{{port}}", CONST_WORKERS = "1", CONST_CARD = "{card}" }}
cold_env = {{ WARMUP = "false" }}

[variant.in_process]
predictor = "const_serving.predictor:ConstPredictor"
settings = "const_serving.settings:ConstServingSettings"

[[variant]]
name = "needs-a-tool"
port = 8010
requires = ["no-such-build-tool-anywhere"]

[variant.local]
command = ["no-such-build-tool-anywhere", "serve"]
"""


@pytest.fixture(scope="module")
def throwaway_variant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp folder holding ``const_serving/`` and ``variants.toml``; the repository is not touched."""
    root = tmp_path_factory.mktemp("new-variant")
    package = root / "const_serving"
    package.mkdir()
    for name, text in VARIANT_FILES.items():
        (package / name).write_text(text.lstrip("\n"))
    (root / "variants.toml").write_text(VARIANTS_TOML.format(card=CARD, skip_reason=SKIP_REASON))
    return root


def _environment(root: Path) -> dict[str, str]:
    """The variants file added through BENCH_VARIANTS_FILES; the package importable from its folder."""
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, VARIANTS_ENV: str(root / "variants.toml"), "PYTHONPATH": path}


def test_the_contract_suite_passes_against_a_variant_made_of_one_folder(throwaway_variant: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        env={**_environment(throwaway_variant), "SERVING_VARIANTS": "const"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "1 skipped" in done.stdout, done.stdout[-3000:]
    assert f"const: {SKIP_REASON}" in done.stdout  # the contract_skips entry, reported with its reason
    assert not (REPO_ROOT / "const_serving").exists(), "the variant lives outside the repository"


def test_a_smoke_compare_measures_it_and_lists_the_skipped_variant(
    throwaway_variant: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    smoke = [
        "--payload", "photo_small", "--levels", "1", "--warmup", "0.5", "--duration", "2", "--repeats", "1",
        "--startup-runs", "1", "--cold-runs", "1", "--open-runs", "0", "--ceiling-iterations", "5",
    ]  # fmt: skip
    variants_file = str(throwaway_variant / "variants.toml")
    command = [sys.executable, "-m", "bench", "compare", "--no-builtin", "--runner", "local"]
    done = subprocess.run(
        [*command, "--variants-file", variants_file, *smoke, "--results-dir", str(results)],
        cwd=REPO_ROOT,
        env={key: value for key, value in _environment(throwaway_variant).items() if key != VARIANTS_ENV},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    run_dir = next(path for path in results.iterdir() if path.is_dir() and path.name != "latest")
    skipped = json.loads((run_dir / "raw" / "skipped_variants.json").read_text())
    assert skipped == [
        {"name": "needs-a-tool", "reason": "needs `no-such-build-tool-anywhere` on PATH (not found)"}
    ]
    rows = {row["key"]: row for row in json.loads((run_dir / "report.json").read_text())["rows"]}
    for key in ("c1.rps", "ceiling.rps", "accuracy.top1"):
        assert rows[key]["cells"]["const"]["median"] is not None, (key, rows[key]["cells"])
    info = json.loads((run_dir / "raw" / "const" / "info.json").read_text())["info"]
    assert info["variant"] == "const" and info["runtime"]["name"] == "numpy"
    assert (run_dir / "raw" / "const").is_dir() and not (run_dir / "raw" / "needs-a-tool").exists()
