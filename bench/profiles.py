"""Named measurement plans: `quick` (minutes for two variants on 2 cores) and `full` (anchor scale)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

LoadMode = Literal["closed"]  # issue 6 adds "open" (scheduled arrivals) beside it


@dataclass(frozen=True)
class Profile:
    name: str
    concurrency_levels: tuple[int, ...]
    warmup_s: float
    duration_s: float
    requests_per_level: (
        int | None
    )  # when set, a level ends after this many measured requests (duration is a cap)
    repeats: int
    startup_runs: int
    cold_runs: int
    warm_requests: int = 5
    load_mode: LoadMode = "closed"
    payload: str = "photo_medium"

    def with_overrides(self, **overrides: Any) -> Profile:
        return replace(self, **{key: value for key, value in overrides.items() if value is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        concurrency_levels=(1, 8),
        warmup_s=3.0,
        duration_s=12.0,
        requests_per_level=None,
        repeats=2,
        startup_runs=3,
        cold_runs=2,
    ),
    # The anchor ran `ab -n 5000 -c 50` and 15 container starts; full adds the sweep below and above it.
    "full": Profile(
        name="full",
        concurrency_levels=(1, 4, 16, 50),
        warmup_s=5.0,
        duration_s=300.0,
        requests_per_level=5000,
        repeats=3,
        startup_runs=15,
        cold_runs=3,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose from {sorted(PROFILES)}") from None
