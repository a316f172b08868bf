"""The compose runner's engine readings with known inputs (shapes as the Docker engine 20.10 returns them)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.registry import load_registry
from bench.runners.engine import (
    DEFAULT_SOCKET,
    EngineError,
    cpu_percent,
    engine_socket,
    memory_in_use,
    pick_published_port,
)

BOTH_FAMILIES = [{"HostIp": "0.0.0.0", "HostPort": "8002"}, {"HostIp": "::", "HostPort": "8002"}]


def test_the_one_published_port_is_used_whatever_was_asked() -> None:
    assert pick_published_port({"8002/tcp": BOTH_FAMILIES}, None) == 8002
    assert pick_published_port({"8002/tcp": BOTH_FAMILIES}, 9000) == 8002


def test_the_asked_port_wins_among_several() -> None:
    ports = {"8002/tcp": BOTH_FAMILIES, "9100/tcp": [{"HostIp": "0.0.0.0", "HostPort": "9100"}]}
    assert pick_published_port(ports, 9100) == 9100
    with pytest.raises(EngineError, match="8002, 9100"):
        pick_published_port(ports, None)


def test_no_published_port_is_an_error() -> None:
    with pytest.raises(EngineError, match="none published"):
        pick_published_port({"8002/tcp": None}, None)


def test_cpu_percent_is_docker_stats_formula() -> None:
    stats = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 1_500_000_000},
            "system_cpu_usage": 10_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000}, "system_cpu_usage": 8_000_000_000},
    }
    # 0.5 s of CPU over 1 s of wall time on 2 cores (the system counter advances 2 s per second)
    assert cpu_percent(stats) == pytest.approx(50.0)


def test_first_reading_has_no_cpu_percent() -> None:
    first = {
        "cpu_stats": {"cpu_usage": {"total_usage": 51_439_237}, "system_cpu_usage": 4_921_710_000_000},
        "precpu_stats": {"cpu_usage": {"total_usage": 0}},
    }
    assert cpu_percent(first) is None


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        ({"usage": 7_876_608, "stats": {"total_inactive_file": 876_608, "inactive_file": 1}}, 7_000_000),
        ({"usage": 5_000_000, "stats": {"inactive_file": 1_000_000}}, 4_000_000),  # cgroup v2 names
        ({"usage": 1_000, "stats": {"inactive_file": 5_000}}, 0),
    ],
)
def test_memory_leaves_out_the_reclaimable_cache(stats: dict, expected: float) -> None:
    assert memory_in_use(stats) == expected


def test_engine_socket_follows_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    assert engine_socket() == Path("/run/user/1000/docker.sock")
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.5:2376")
    assert engine_socket() is None
    monkeypatch.delenv("DOCKER_HOST")
    assert engine_socket() == (DEFAULT_SOCKET if DEFAULT_SOCKET.exists() else None)


def test_builtin_variants_name_their_compose_port_variable() -> None:
    ports = {variant.name: variant.compose_port_env for variant in load_registry()}
    assert ports["torch"] == "TORCH_PORT" and ports["onnx"] == "ONNX_PORT"


def test_compose_port_variable_must_be_an_environment_name() -> None:
    torch = next(variant for variant in load_registry() if variant.name == "torch")
    with pytest.raises(ValidationError):
        type(torch).model_validate({**torch.model_dump(), "compose_port_env": "torch port"})
