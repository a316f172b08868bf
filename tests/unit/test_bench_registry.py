import subprocess
import sys
import sysconfig
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
# bench/variants.toml's names in order: the Python variants and the strategies derived from them.
BUILTIN_NAMES = [variant.name for variant in load_variants_file(BUILTIN_VARIANTS_FILE)]

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
    assert {"torch", "onnx", "onnx-fast"} <= set(by_name)  # and the strategies derived from onnx
    assert baseline_of(variants).name == "torch"
    assert (by_name["torch"].port, by_name["onnx"].port) == (8001, 8002)
    assert by_name["onnx"].local is not None and by_name["onnx"].local.command[1:] == ["-m", "onnx_serving"]
    assert by_name["torch"].local_cwd == REPO_ROOT
    assert by_name["torch"].requirements_path == REPO_ROOT / "torch_serving" / "requirements.txt"
    assert by_name["onnx"].artifact_paths == [REPO_ROOT / "build" / "artifacts" / "fused.optimized.onnx"]


def test_external_variants_file_is_added_by_configuration(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text(EXTERNAL_TOML)
    variants = load_registry([extra], repo_root=tmp_path)  # no external/*/variants.toml there
    assert [variant.name for variant in variants] == [*BUILTIN_NAMES, "rust", "remote"]
    rust, remote = variants[-2], variants[-1]
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


def test_settings_join_the_local_env_and_must_be_plain(tmp_path: Path) -> None:
    path = tmp_path / "strategy.toml"
    path.write_text(
        '[[variant]]\nname = "fast"\nport = 9\nsettings = { JPEG_DRAFT = "true" }\n'
        '[variant.local]\ncommand = ["x"]\nenv = { HOST = "127.0.0.1", JPEG_DRAFT = "false" }\n'
    )
    (variant,) = load_variants_file(path)
    assert variant.settings == {"JPEG_DRAFT": "true"}
    assert variant.local is not None and variant.local.env == {"HOST": "127.0.0.1", "JPEG_DRAFT": "true"}
    path.write_text('[[variant]]\nname = "bad"\nport = 9\nurl = "http://h"\nsettings = { jpeg = "a b" }\n')
    with pytest.raises(RegistryError, match="UPPER_CASE"):
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
        baseline_of(load_registry([path], repo_root=tmp_path))


# --- the keys for variants kept elsewhere (external/), the query CLI ---

RUST_TOML = """
root = "."

[[variant]]
name = "rusty"
port = 8013
requires = ["cargo"]
contract_skips = { "test_metrics_*" = "one process: no serving_worker_ready", "test_info_*" = "other" }

[variant.local]
command = ["target/release/rusty", "--port", "{port}"]
env = { ORT_DYLIB_PATH = "{site_packages}/onnxruntime/capi" }
build = ["cargo", "build", "--release", "--manifest-path", "{root}/Cargo.toml"]

[variant.tests]
artifact_env = "ONNX_MODEL"
"""


def _external_repo(tmp_path: Path, text: str = RUST_TOML) -> Path:
    folder = tmp_path / "external" / "rusty"
    folder.mkdir(parents=True)
    (folder / "variants.toml").write_text(text)
    return tmp_path


def test_external_folders_declare_their_variants_by_default(tmp_path: Path) -> None:
    repo = _external_repo(tmp_path)
    names = [variant.name for variant in load_registry(repo_root=repo)]
    assert names == [*BUILTIN_NAMES, "rusty"]
    assert load_registry(include_builtin=False, repo_root=repo, environ={}) == []


def test_an_explicit_file_replaces_a_discovered_external_variant(tmp_path: Path) -> None:
    repo = _external_repo(tmp_path)
    override = tmp_path / "override.toml"
    override.write_text('[[variant]]\nname = "rusty"\nurl = "http://127.0.0.1:9"\n')
    variants = load_registry([override], repo_root=repo)
    assert [variant.name for variant in variants] == [*BUILTIN_NAMES, "rusty"]
    assert variants[-1].is_external_url
    builtin_twice = tmp_path / "torch.toml"
    builtin_twice.write_text('[[variant]]\nname = "torch"\nurl = "http://127.0.0.1:9"\n')
    with pytest.raises(RegistryError, match="declared twice"):
        load_registry([builtin_twice], repo_root=repo)


def test_requires_build_site_packages_and_contract_skips(tmp_path: Path) -> None:
    repo = _external_repo(tmp_path)
    rusty = next(variant for variant in load_registry(repo_root=repo) if variant.name == "rusty")
    assert rusty.requires == ["cargo"] and rusty.python_package is None
    assert rusty.local is not None
    command, env = rusty.local.render(port=9001, root=rusty.root)
    assert command == ["target/release/rusty", "--port", "9001"]
    assert env == {"ORT_DYLIB_PATH": f"{sysconfig.get_paths()['purelib']}/onnxruntime/capi"}
    assert rusty.local.render_build(root=rusty.root) == [
        "cargo", "build", "--release", "--manifest-path", f"{rusty.root}/Cargo.toml",
    ]  # fmt: skip
    assert rusty.skip_reason("test_metrics_count_every_request_across_workers[rusty]") == (
        "rusty: one process: no serving_worker_ready"
    )
    assert rusty.skip_reason("test_predict_json_payload_on_both_paths") is None
    assert rusty.tests.workers == 1 and rusty.tests.artifact_env == "ONNX_MODEL"
    missing = rusty.model_copy(update={"requires": ["no-such-command-anywhere"]})
    assert missing.missing_commands() == ["no-such-command-anywhere"]


def test_builtin_variants_declare_package_image_and_test_setup() -> None:
    by_name = {variant.name: variant for variant in load_variants_file(BUILTIN_VARIANTS_FILE)}
    assert by_name["torch"].python_package == "torch_serving"
    assert by_name["onnx"].python_package == "onnx_serving"
    assert by_name["onnx"].tests.workers == 2 and by_name["onnx"].tests.artifact_env == "ONNX_MODEL"
    assert by_name["torch"].image_tag("slim") == "serving-lab/torch-serving:slim"
    for variant in by_name.values():
        if variant.image is None:  # a strategy derived from onnx runs onnx's image
            assert variant.extends == "onnx", variant.name
            continue
        assert variant.requirements_path == REPO_ROOT / f"{variant.python_package}" / "requirements.txt"
        assert Path(variant.python_package or "") not in variant.image.files  # the package is always copied


def _cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.registry", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_query_cli_answers_the_shell_scripts() -> None:
    assert _cli("names").stdout.split() == [variant.name for variant in load_registry()]
    imaged = ["torch", "onnx", "openvino", "ray-serve", "bentoml"]
    assert _cli("names", "--image").stdout.split() == imaged
    assert _cli("get", "onnx", "package").stdout.strip() == "onnx_serving"
    assert _cli("get", "torch", "port").stdout.strip() == "8001"
    assert _cli("requirements", "--image").stdout.split() == [
        f"{_cli('get', name, 'package').stdout.strip()}/requirements.txt" for name in imaged
    ]
    assert "build/artifacts/fused.optimized.onnx" in _cli("get", "onnx", "image-files").stdout.split()
    fast_settings = _cli("get", "onnx-fast", "settings").stdout.split()
    onnx_settings = _cli("get", "onnx", "settings").stdout.split()
    assert set(fast_settings) == {*onnx_settings, "VARIANT=onnx-fast", "JPEG_DRAFT=true"}
    unknown = _cli("get", "tensorflow", "port")
    assert unknown.returncode == 2 and "unknown variant" in unknown.stderr


def test_stage_image_copies_the_package_and_the_listed_files(tmp_path: Path) -> None:
    done = _cli("stage-image", "torch", str(tmp_path / "app"))
    assert done.returncode == 0, done.stderr
    staged = {path.relative_to(tmp_path / "app").as_posix() for path in (tmp_path / "app").rglob("*")}
    assert {"torch_serving/predictor.py", "torch_serving/requirements.txt", "serving_core/app.py"} <= staged
    assert "model_zoo/default/mobilenet_v3_small_digits.pt" in staged
    assert not any(path.startswith(("onnx_serving", "build/")) or "__pycache__" in path for path in staged)
