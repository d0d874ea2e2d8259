from __future__ import annotations

import math

import pytest

from signaling.estimate import HandleTimeAverager, estimate_wait_minutes, format_wait


def test_average_starts_from_the_catalogue() -> None:
    averager = HandleTimeAverager({"m1": 8, "m2": 2.5})
    assert averager.average_seconds("m1") == 480.0
    assert averager.average_seconds("m2") == 150.0


def test_unknown_matter_uses_the_default() -> None:
    averager = HandleTimeAverager({}, default_minutes=6)
    assert averager.average_seconds("m9") == 360.0
    assert averager.observe("m9", 60.0) == pytest.approx(0.2 * 60 + 0.8 * 360)


def test_observations_are_weighted_exponentially() -> None:
    averager = HandleTimeAverager({"m1": 10}, alpha=0.5)
    assert averager.observe("m1", 200.0) == 400.0
    assert averager.observe("m1", 100.0) == 250.0
    assert averager.average_seconds("m1") == 250.0
    assert averager.average_seconds("m2") == 600.0


def test_alpha_one_follows_the_last_session() -> None:
    averager = HandleTimeAverager({"m1": 10}, alpha=1.0)
    averager.observe("m1", 42.0)
    assert averager.average_seconds("m1") == 42.0


def test_snapshot_restores() -> None:
    averager = HandleTimeAverager({"m1": 10, "m2": 1})
    averager.observe("m1", 0.0)
    restored = HandleTimeAverager({"m1": 10, "m2": 1}, averages=averager.snapshot())
    assert restored.snapshot() == {"m1": 480.0, "m2": 60.0}


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
def test_alpha_must_be_a_weight(alpha: float) -> None:
    with pytest.raises(ValueError, match=rf"alpha must be in \(0, 1\], got {alpha}"):
        HandleTimeAverager({}, alpha=alpha)


def test_default_must_be_positive() -> None:
    with pytest.raises(ValueError, match="default_minutes must be positive, got 0"):
        HandleTimeAverager({}, default_minutes=0)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_observation_is_refused(bad: float) -> None:
    averager = HandleTimeAverager({"m1": 10})
    with pytest.raises(ValueError, match="handle_seconds must be a finite non-negative number"):
        averager.observe("m1", bad)
    assert averager.average_seconds("m1") == 600.0


@pytest.mark.parametrize(("position", "avg", "clerks", "minutes"), [
    (1, 600.0, 1, 10),
    (3, 600.0, 2, 15),
    (1, 600.0, 3, 4),      # 200 s rounds up
    (1, 30.0, 1, 1),       # under a minute still says one
    (1, 0.0, 1, 1),
    (4, 90.0, 1, 6),
])
def test_wait_is_position_times_handle_time_over_clerks(
    position: int, avg: float, clerks: int, minutes: int
) -> None:
    assert estimate_wait_minutes(position, avg, clerks) == minutes


def test_no_eligible_clerk_means_no_estimate() -> None:
    assert estimate_wait_minutes(1, 600.0, 0) is None


def test_estimate_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="position must be at least 1, got 0"):
        estimate_wait_minutes(0, 600.0, 1)
    with pytest.raises(ValueError, match="avg_handle_seconds must not be negative"):
        estimate_wait_minutes(1, -1.0, 1)


def test_display_text() -> None:
    assert format_wait(12) == "约 12 分钟 / about 12 min"
    assert format_wait(None) == "暂无可用工作人员 / No staff available"
