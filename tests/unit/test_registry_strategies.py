"""Strategies as registry entries: `extends`, merged settings, `unset`, overridden artifacts, `profiles`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.profiles import PROFILES
from bench.registry import RegistryError, in_profile, load_registry

BASE = """
root = "."
[[variant]]
name = "base"
baseline = true
port = 9001
compose_service = "base-serving"
requirements = "base/requirements.txt"
artifacts = ["models/exact.onnx"]
settings = { ALLOC = "1", KEEP = "yes" }
[variant.local]
command = ["{python}", "-m", "base_serving"]
env = { PORT = "{port}", WORKERS = "1", THREADS = "1" }
cold_env = { WARMUP = "false" }
[variant.in_process]
predictor = "base_serving.predictor:Predictor"
settings = "base_serving.settings:Settings"
[variant.tests]
workers = 2
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _registry(tmp_path: Path, derived: str) -> dict[str, object]:
    files = [_write(tmp_path / "base.toml", BASE), _write(tmp_path / "derived.toml", derived)]
    return {v.name: v for v in load_registry(files, include_builtin=False, repo_root=tmp_path)}


def test_a_derived_entry_inherits_and_overrides_its_base(tmp_path: Path) -> None:
    variants = _registry(
        tmp_path,
        """
[[variant]]
name = "base-int8"
extends = "base"
port = 9002
profiles = ["full"]
artifacts = ["models/int8.onnx"]
settings = { MODEL = "models/int8.onnx", WORKERS = "2" }
""",
    )
    base, derived = variants["base"], variants["base-int8"]
    assert derived.extends == "base" and not derived.baseline
    assert derived.local is not None and base.local is not None
    assert derived.local.command == base.local.command
    # settings merge over the base's and join the local env, which keeps the base's other keys
    assert derived.settings == {"ALLOC": "1", "KEEP": "yes", "MODEL": "models/int8.onnx", "WORKERS": "2"}
    assert derived.local.env == {**base.local.env, "MODEL": "models/int8.onnx", "WORKERS": "2", "ALLOC": "1",
                                 "KEEP": "yes"}  # fmt: skip
    assert derived.local.cold_env == {"WARMUP": "false"}
    assert derived.artifact_paths == [(tmp_path / "models/int8.onnx").resolve()]
    assert derived.requirements_path == base.requirements_path
    assert derived.in_process == base.in_process
    # what names or places a declaration is its own: not inherited
    assert derived.port == 9002 and derived.compose_service is None
    assert derived.tests.run is False and base.tests.run is True and base.tests.workers == 2
    assert derived.profiles == ["full"] and base.profiles is None


def test_unset_removes_inherited_settings(tmp_path: Path) -> None:
    variants = _registry(
        tmp_path,
        """
[[variant]]
name = "base-default-alloc"
extends = "base"
port = 9003
unset = ["ALLOC"]
""",
    )
    derived = variants["base-default-alloc"]
    assert derived.settings == {"KEEP": "yes"}
    assert derived.local is not None and "ALLOC" not in derived.local.env


def test_a_chain_of_derivations_resolves(tmp_path: Path) -> None:
    variants = _registry(
        tmp_path,
        """
[[variant]]
name = "one"
extends = "base"
port = 9004
settings = { A = "1" }
[[variant]]
name = "two"
extends = "one"
port = 9005
settings = { B = "2" }
""",
    )
    assert variants["two"].settings == {"ALLOC": "1", "KEEP": "yes", "A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("derived", "message"),
    [
        ('[[variant]]\nname = "x"\nextends = "nowhere"\nport = 9006\n', "extends 'nowhere'"),
        ('[[variant]]\nname = "x"\nport = 9006\nunset = ["ALLOC"]\n[variant.local]\ncommand = ["x"]\n',
         "`unset` only applies with `extends`"),
    ],
)  # fmt: skip
def test_a_bad_derivation_is_refused_with_the_reason(tmp_path: Path, derived: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        _registry(tmp_path, derived)


def test_builtin_strategies_are_a_few_lines_over_onnx() -> None:
    variants = {variant.name: variant for variant in load_registry()}
    onnx = variants["onnx"]
    assert onnx.local is not None
    expected = {
        "onnx-int8": {"ONNX_MODEL": "build/artifacts/fused.optimized.int8.onnx"},
        "onnx-portable": {"ONNX_MODEL": "build/artifacts/fused.portable.onnx"},
        "onnx-2workers": {"ONNX_WORKERS": "2"},
        "onnx-2threads": {"THREADS": "2"},
        "onnx-fast": {"JPEG_DRAFT": "true"},
    }
    for name, overrides in expected.items():
        strategy = variants[name]
        assert strategy.extends == "onnx" and strategy.local is not None
        assert strategy.local.env == {**onnx.local.env, **overrides, "VARIANT": name}, name
    assert variants["onnx-int8"].approximates == "onnx"
    assert variants["onnx-int8"].artifact_paths[0].name == "fused.optimized.int8.onnx"
    default_alloc = variants["onnx-malloc-default"].local
    assert default_alloc is not None
    assert not any(key.startswith("MALLOC_") for key in default_alloc.env)
    assert len({variant.port for variant in variants.values()}) == len(variants)  # one port each


def test_the_quick_profile_runs_the_trio_and_full_every_strategy() -> None:
    registry = load_registry()
    quick = [variant.name for variant in in_profile(registry, "quick")]
    full = [variant.name for variant in in_profile(registry, "full")]
    assert quick == ["torch", "onnx", "rust"]
    assert set(quick) < set(full)
    assert {"onnx-int8", "onnx-portable", "onnx-fast", "onnx-2workers", "openvino"} <= set(full)
    assert set(PROFILES) >= {"quick", "full"}


def test_hosts_names_a_registered_variant_and_the_frameworks_host_onnx(tmp_path: Path) -> None:
    hosting = (
        '[[variant]]\nname = "framework"\nport = 9007\nhosts = "base"\n[variant.local]\ncommand = ["x"]\n'
    )
    assert _registry(tmp_path, hosting)["framework"].hosts == "base"  # type: ignore[attr-defined]
    with pytest.raises(RegistryError, match="hosts 'nowhere', which is not registered"):
        _registry(tmp_path, hosting.replace('"base"', '"nowhere"'))
    variants = {variant.name: variant for variant in load_registry()}
    assert {name for name, variant in variants.items() if variant.hosts == "onnx"} == {
        "ray-serve",
        "bentoml",
        "mlserver",
    }
    assert variants["onnx-fast"].hosts is None  # a strategy of onnx, not a server around it


def test_image_flavours_default_to_both_and_always_hold_slim() -> None:
    from pydantic import ValidationError

    from bench.registry import ImageBuild

    assert ImageBuild().flavours == ["slim", "dev"]
    with pytest.raises(ValidationError, match="must include slim"):
        ImageBuild(flavours=["dev"])
    variants = {variant.name: variant for variant in load_registry() if variant.image is not None}
    assert {"torch", "onnx"} <= {
        name for name, variant in variants.items() if "dev" in variant.image.flavours
    }
