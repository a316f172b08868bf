import sys
from pathlib import Path

import pytest

from bench.registry import (
    BUILTIN_VARIANTS_FILE,
    PayloadFormat,
    RegistryError,
    baseline_of,
    load_registry,
    load_variants_file,
    select_variants,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

EXTERNAL_TOML = """
root = "svc"

[[variant]]
name = "rust"
port = 8003
payload_format = "raw"
compose_service = "rust-onnx-serving"
artifacts = ["model.onnx"]

[variant.local]
command = ["{python}", "server.py", "--port", "{port}"]
env = { LISTEN = "127.0.0.1:{port}" }
cold_env = { WARMUP = "0" }

[[variant]]
name = "remote"
url = "http://10.0.0.5:9000/"
payload_format = "multipart"
"""


def test_builtin_registry_declares_torch_baseline_and_onnx() -> None:
    variants = load_variants_file(BUILTIN_VARIANTS_FILE)
    by_name = {variant.name: variant for variant in variants}
    assert set(by_name) == {"torch", "onnx"}
    assert baseline_of(variants).name == "torch"
    assert (by_name["torch"].port, by_name["onnx"].port) == (8001, 8002)
    assert by_name["onnx"].local is not None and by_name["onnx"].local.command[1:] == ["-m", "onnx_serving"]
    assert by_name["torch"].local_cwd == REPO_ROOT
    assert by_name["torch"].requirements_path == REPO_ROOT / "requirements" / "torch_serving.txt"
    assert by_name["onnx"].artifact_paths == [REPO_ROOT / "build" / "artifacts" / "fused.optimized.onnx"]


def test_external_variants_file_is_added_by_configuration(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(EXTERNAL_TOML)
    variants = load_registry([extra])
    assert [variant.name for variant in variants] == ["torch", "onnx", "rust", "remote"]
    rust, remote = variants[2], variants[3]
    assert rust.payload_format is PayloadFormat.RAW and rust.compose_service == "rust-onnx-serving"
    assert rust.local_cwd == tmp_path / "svc"
    assert rust.artifact_paths == [tmp_path / "svc" / "model.onnx"]
    command, env = rust.local.render(port=9123, root=rust.root, cold=True)
    assert command == [sys.executable, "server.py", "--port", "9123"]
    assert env == {"LISTEN": "127.0.0.1:9123", "WARMUP": "0"}
    assert remote.is_external_url and remote.url == "http://10.0.0.5:9000"
    assert baseline_of(variants).name == "torch"


def test_variants_files_from_the_environment(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(EXTERNAL_TOML)
    variants = load_registry(include_builtin=False, environ={"BENCH_VARIANTS_FILES": str(extra)})
    assert [variant.name for variant in variants] == ["rust", "remote"]
    assert baseline_of(variants).name == "rust"  # none flagged: the first one


def test_selection_keeps_the_requested_order_and_rejects_unknown_names() -> None:
    variants = load_registry()
    assert [variant.name for variant in select_variants(variants, ["onnx", "torch"])] == ["onnx", "torch"]
    with pytest.raises(RegistryError, match="unknown variant"):
        select_variants(variants, ["tensorflow"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[variant]]\nname = "x"\nport = 1\n', "needs at least one of"),
        ('[[variant]]\nname = "x"\ncompose_service = "x"\n', "needs `port`"),
        ('[[variant]]\nname = "x"\nurl = "http://a"\npayload_format = "xml"\n', "payload_format"),
        ('[[variant]]\nname = "x"\nurl = "http://a"\ncolour = "red"\n', "colour"),
        ('title = "x"\n', "unknown top-level keys"),
        ("[[variant]\n", "not valid TOML"),
        ('root = "."\n', "declares no"),
    ],
)
def test_bad_variants_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message):
        load_variants_file(path)


def test_a_name_declared_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.toml"
    path.write_text('[[variant]]\nname = "torch"\nurl = "http://127.0.0.1:1"\n')
    with pytest.raises(RegistryError, match="declared twice"):
        load_registry([path])


def test_two_baselines_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text('[[variant]]\nname = "other"\nbaseline = true\nurl = "http://127.0.0.1:1"\n')
    with pytest.raises(RegistryError, match="more than one baseline"):
        baseline_of(load_registry([path]))
