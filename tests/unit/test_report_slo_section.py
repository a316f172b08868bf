"""The SLO search's rows from known searches: the requests over the SLO at the reported rate, and the flag
raised when the search found far less than the queueing model allows for the measured service time."""

import pytest

from bench.analysis.queueing import max_rate_under_slo, predicted_quantile_ms
from bench.records.derived import servers, service_core_count
from bench.records.loader import VariantRecords
from bench.records.models import Pinning, RunInfo, ServiceInfo, SloProbe, SloSearch, SysInfo
from bench.report.flags import FlagCode, Severity
from bench.report.sections.open_loop import SLO_MODEL_SHARE, QueueModel, over_at_max_cell, slo_search_flag

TORCH_LIKE = QueueModel(service_ms=30.0, servers=1)  # sustains 12.4 req/s with p99 <= 100 ms


def _search(max_rps: float, probes: list[SloProbe], flags: list[str] | None = None) -> SloSearch:
    return SloSearch(slo_ms=100.0, max_rps=max_rps, probes=probes, flags=flags or [])


def _probe(rate: float, requests: int, over: int) -> SloProbe:
    p99_ms = 120.0 if over > requests // 100 else 60.0
    return SloProbe(rate=rate, p99_ms=p99_ms, requests=requests, over_slo=over)


def test_a_search_far_below_the_model_is_flagged_with_the_lowest_rate_that_missed() -> None:
    probes = [_probe(18.0, 200, 13), _probe(9.0, 170, 5), _probe(4.5, 190, 1), _probe(6.8, 200, 7)]
    flag = slo_search_flag(_search(4.5, probes, ["a search flag"]), TORCH_LIKE)
    assert flag is not None and flag.code is FlagCode.SLO_OUTLIERS and flag.severity is Severity.WARNING
    model_rps = max_rate_under_slo("M/D/c", 30.0, 100.0, 1)
    assert f"S = 30.0 ms and c = 1 sustains ({model_rps:.1f} req/s)" in flag.message
    model_p99 = predicted_quantile_ms("M/D/c", 6.8, 30.0, 1)
    assert (
        "the lowest rate that missed, 6.8 req/s, measured p99 120 ms, 7 of 200 requests (3.5%) over 100 ms"
        f" where the model gives p99 {model_p99:.0f} ms" in flag.message
    )
    assert model_p99 < 100.0  # queueing alone would have met the SLO there
    assert flag.message.endswith("; a search flag")


def test_a_search_near_the_model_keeps_only_its_own_flags() -> None:
    near = 0.9 * max_rate_under_slo("M/D/c", 30.0, 100.0, 1)
    search = _search(near, [_probe(near, 300, 2)])
    assert slo_search_flag(search, TORCH_LIKE) is None
    flag = slo_search_flag(_search(near, [_probe(near, 300, 2)], ["unsettled"]), TORCH_LIKE)
    assert flag is not None and flag.code is FlagCode.SLO_SEARCH and flag.message == "unsettled"
    no_latency = QueueModel(service_ms=float("nan"), servers=1)
    assert slo_search_flag(_search(0.5, [_probe(0.5, 200, 0)]), no_latency) is None  # no model to hold it to
    assert SLO_MODEL_SHARE == 0.5


def test_the_share_over_the_slo_at_the_reported_rate_names_its_noise_allowance() -> None:
    cell = over_at_max_cell(_search(10.0, [_probe(20.0, 300, 30), _probe(10.0, 200, 4)]))
    assert cell.values == [2.0]
    assert cell.flag is not None and cell.flag.message == "4 of 200; up to 5 is within sampling noise"
    assert over_at_max_cell(_search(0.0, [_probe(5.0, 200, 50)])).text == "n/a"
    old_record = SloSearch(slo_ms=100.0, max_rps=10.0, probes=[SloProbe(rate=10.0, p99_ms=50.0)])
    assert over_at_max_cell(old_record).text == "n/a"  # written before probes counted their requests


@pytest.mark.parametrize(
    ("pinned", "logical", "expected"), [([1], 2, 1), ([], 2, 2), ([0, 1], 2, 2), ([], None, 2)]
)
def test_the_models_servers_are_capped_at_the_services_cores(
    pinned: list[int], logical: int | None, expected: int
) -> None:
    answer = {"workers": 2, "inference_concurrency": 1}
    two_workers = VariantRecords(name="w2", info=ServiceInfo(info=answer))
    info = RunInfo(pinning=Pinning(service_cores=pinned), sysinfo=SysInfo(logical_cores=logical))
    assert servers(two_workers, service_core_count(info)) == expected
    assert servers(two_workers) == 2
