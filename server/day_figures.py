"""Today's figures for the console and the supervisor dashboard. Pure: rows in, numbers out.

"Today" is the calendar day in China time (the huts' clock), whatever the server's zone.
A session counts on the day it was accepted; offers nobody accepted are not sessions.
Waiting time is from the ticket's arrival to the accepting clerk (``wait_s`` of the
session journal), handling time from acceptance to the end (``handle_s``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server.opening_hours import to_china_time

WAIT_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("<1", 0, 60), ("1-3", 60, 180), ("3-5", 180, 300), ("5-10", 300, 600),
    ("10-20", 600, 1200), ("20+", 1200, None),
)
"""Label (minutes), from, to (seconds): the waiting-time histogram's bars."""


@dataclass(frozen=True)
class SessionRow:
    clerk: str
    accepted_at: datetime
    outcome: str | None
    wait_s: float | None
    handle_s: float | None


def day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s China-time day, as an aware UTC datetime."""
    local = to_china_time(now)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def day_end(now: datetime) -> datetime:
    return day_start(now) + timedelta(days=1)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 1) if present else None


def wait_histogram(waits: Iterable[float]) -> list[dict[str, Any]]:
    counts = Counter[str]()
    for wait in waits:
        for label, low, high in WAIT_BUCKETS:
            if wait >= low and (high is None or wait < high):
                counts[label] += 1
                break
    return [{"label": label, "count": counts[label]} for label, _, _ in WAIT_BUCKETS]


def rating_histogram(ratings: Iterable[int]) -> list[dict[str, int]]:
    counts = Counter(ratings)
    return [{"score": score, "count": counts[score]} for score in range(1, 6)]


def clerk_figures(sessions: Sequence[SessionRow], ratings: Sequence[int]) -> dict[str, Any]:
    """One clerk's day (``sessions`` and ``ratings`` already filtered to them and today)."""
    return {
        "sessions_today": len(sessions),
        "completed_today": sum(1 for s in sessions if s.outcome == "completed"),
        "average_handle_s": _mean(s.handle_s for s in sessions if s.outcome == "completed"),
        "average_wait_s": _mean(s.wait_s for s in sessions),
        "rated": len(ratings),
        "average_rating": _mean(float(r) for r in ratings),
    }


def dashboard_figures(sessions: Sequence[SessionRow], ratings: Sequence[int],
                      now: datetime) -> dict[str, Any]:
    """Everyone's day: per-hour sessions (China time), waits, outcomes, ratings."""
    per_hour = Counter(to_china_time(s.accepted_at).hour for s in sessions)
    outcomes = Counter(s.outcome or "open" for s in sessions)
    return {
        "day": to_china_time(now).date().isoformat(),
        "sessions": len(sessions),
        "sessions_per_hour": [{"hour": hour, "count": per_hour[hour]} for hour in range(24)],
        "wait_histogram": wait_histogram(s.wait_s for s in sessions if s.wait_s is not None),
        "average_wait_s": _mean(s.wait_s for s in sessions),
        "average_handle_s": _mean(s.handle_s for s in sessions if s.outcome == "completed"),
        "outcomes": dict(sorted(outcomes.items())),
        "ratings": rating_histogram(ratings),
        "average_rating": _mean(float(r) for r in ratings),
    }
