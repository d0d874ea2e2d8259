"""Today's figures: China-time days, histograms, averages."""

from __future__ import annotations

from datetime import UTC, datetime

from server.day_figures import (
    SessionRow,
    clerk_figures,
    dashboard_figures,
    day_start,
    rating_histogram,
    wait_histogram,
)


def test_the_day_is_china_time_whatever_the_server_zone() -> None:
    # 23:30 UTC on the 1st is 07:30 on the 2nd in China: the day began at 16:00 UTC.
    assert day_start(datetime(2026, 3, 1, 23, 30, tzinfo=UTC)) == datetime(
        2026, 3, 1, 16, 0, tzinfo=UTC)
    assert day_start(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == datetime(
        2026, 2, 28, 16, 0, tzinfo=UTC)


def test_waits_fall_into_minute_buckets_with_closed_lower_bounds() -> None:
    bars = wait_histogram([0, 59.9, 60, 179, 180, 599, 600, 1200, 99_999])
    assert [(b["label"], b["count"]) for b in bars] == [
        ("<1", 2), ("1-3", 2), ("3-5", 1), ("5-10", 1), ("10-20", 1), ("20+", 2)]


def test_ratings_histogram_has_every_score() -> None:
    assert rating_histogram([5, 5, 1]) == [
        {"score": 1, "count": 1}, {"score": 2, "count": 0}, {"score": 3, "count": 0},
        {"score": 4, "count": 0}, {"score": 5, "count": 2}]


def _row(hour_utc: int, outcome: str | None, wait: float, handle: float | None) -> SessionRow:
    return SessionRow("wangli", datetime(2026, 3, 2, hour_utc, 5, tzinfo=UTC), outcome, wait,
                      handle)


def test_a_clerks_day_averages_only_completed_handling() -> None:
    rows = [_row(1, "completed", 30, 300), _row(2, "failed", 90, 20), _row(3, None, 10, None)]
    figures = clerk_figures(rows, [4, 5])
    assert figures == {"sessions_today": 3, "completed_today": 1, "average_handle_s": 300.0,
                       "average_wait_s": 43.3, "rated": 2, "average_rating": 4.5}
    assert clerk_figures([], [])["average_rating"] is None


def test_the_dashboard_counts_sessions_per_china_hour() -> None:
    rows = [_row(1, "completed", 30, 300), _row(1, "completed", 200, 100), _row(2, None, 5, None)]
    figures = dashboard_figures(rows, [3], datetime(2026, 3, 2, 4, 0, tzinfo=UTC))
    per_hour = {x["hour"]: x["count"] for x in figures["sessions_per_hour"] if x["count"]}
    assert per_hour == {9: 2, 10: 1}  # 01:05 and 02:05 UTC
    assert figures["day"] == "2026-03-02"
    assert figures["outcomes"] == {"completed": 2, "open": 1}
    assert figures["average_handle_s"] == 200.0
    assert figures["average_rating"] == 3.0
