"""The run's time budget: the estimate from the profile's sizes, the sizing to a budget, `--budget`."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from bench.__main__ import NO_BUDGET, _budget
from bench.budget import FLOORS, estimate, fit_to_budget
from bench.profiles import get_profile, requests_for_precision
from bench.registry import Variant, in_profile, load_registry


def _variants(profile: str) -> list[Variant]:
    return in_profile(load_registry(), profile)


def test_levels_are_sized_by_the_precision_they_buy() -> None:
    # 10 requests beyond a p99 need 1,000; a 3% relative standard error on the count needs 1,112
    assert requests_for_precision() == 1112
    assert requests_for_precision(tail_samples=20, rse=0.1) == 2000
    assert get_profile("full").requests_per_level == requests_for_precision()


def test_the_estimate_grows_with_every_size_it_depends_on() -> None:
    profile, variants = get_profile("quick"), _variants("quick")
    base = estimate(profile, variants).total_s
    assert estimate(profile, variants[:1]).total_s < base
    assert estimate(replace(profile, duration_s=profile.duration_s * 2), variants).total_s > base
    assert estimate(replace(profile, repeats=profile.repeats + 1), variants).total_s > base
    assert estimate(replace(profile, startup_runs=profile.startup_runs + 5), variants).total_s > base
    assert estimate(replace(profile, slo_search=True), variants).total_s > base
    assert set(estimate(profile, variants).phases) >= {"start-up", "closed loop", "in process"}


def test_quick_runs_as_given_and_stays_under_eight_minutes() -> None:
    profile = get_profile("quick")
    plan = fit_to_budget(profile, _variants("quick"), profile.budget_s)
    assert plan.profile == profile and plan.fits
    assert plan.estimate.total_s < 8 * 60


def test_full_is_sized_to_its_budget_without_going_below_the_floors() -> None:
    profile = get_profile("full")
    variants = _variants("full")
    assert len(variants) >= 6
    assert estimate(profile, variants).total_s > profile.budget_s  # unsized, it would take hours
    plan = fit_to_budget(profile, variants, profile.budget_s)
    assert plan.fits and plan.estimate.total_s <= profile.budget_s <= 60 * 60
    for name, floor in FLOORS.items():
        assert floor <= getattr(plan.profile, name) <= getattr(profile, name), name
    assert plan.profile.concurrency_levels == profile.concurrency_levels  # every row kept
    assert plan.profile.repeats == profile.repeats
    # a larger budget buys longer levels, up to the profile's own sizes
    roomier = fit_to_budget(profile, variants, 2 * profile.budget_s)
    assert roomier.profile.duration_s > plan.profile.duration_s
    assert fit_to_budget(profile, variants, 10**6).profile == profile


def test_a_budget_too_small_for_the_floors_is_said_so() -> None:
    profile = get_profile("full")
    plan = fit_to_budget(profile, _variants("full"), 60.0)
    assert not plan.fits and "exceeds" in plan.note
    assert plan.profile.duration_s == FLOORS["duration_s"]
    assert plan.to_dict()["budget_s"] == 60.0 and plan.to_dict()["total_s"] > 60.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45m", 2700.0), ("1.5h", 5400.0), ("2700s", 2700.0), ("30", 1800.0), ("None", NO_BUDGET)],
)
def test_budget_flag_reads_units(text: str, seconds: float | str) -> None:
    assert _budget(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "0", "m"])
def test_budget_flag_refuses_nonsense(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _budget(text)
