"""Wait estimates shown to a waiting citizen.

Handle time per matter is an exponentially weighted average: it follows a slow
afternoon or a new clerk within a few sessions and needs one number per matter of
state, which the Redis store can keep in a hash. It starts from the catalogue's
``expected_minutes`` so the first citizen of the day gets a sensible figure.

The wait is ``position x average handle time / eligible clerks online``: with
``n`` clerks each finishing a citizen every ``h`` seconds on average, someone frees
up every ``h / n`` seconds, and the citizen is served at the ``position``-th such
moment. It is rounded up to whole minutes and never below one, because telling a
citizen "0 minutes" and then making them wait erodes trust more than a pleasant
surprise does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

NO_CLERK_TEXT = "暂无可用工作人员 / No staff available"


class HandleTimeAverager:
    """Recent handle time per matter code, in seconds."""

    __slots__ = ("_alpha", "_averages", "_default_seconds")

    def __init__(
        self,
        expected_minutes: Mapping[str, float],
        *,
        alpha: float = 0.2,
        default_minutes: float = 10.0,
        averages: Mapping[str, float] | None = None,
    ) -> None:
        """``averages`` (seconds) restores a :meth:`snapshot` over the catalogue seed."""
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if not default_minutes > 0:
            raise ValueError(f"default_minutes must be positive, got {default_minutes}")
        self._alpha = alpha
        self._default_seconds = default_minutes * 60
        self._averages = {matter: minutes * 60 for matter, minutes in expected_minutes.items()}
        self._averages.update(averages or {})

    def observe(self, matter: str, handle_seconds: float) -> float:
        """Fold one finished session in and return the matter's new average."""
        if not (handle_seconds >= 0 and math.isfinite(handle_seconds)):
            raise ValueError(f"handle_seconds must be a finite non-negative number, "
                             f"got {handle_seconds}")
        previous = self.average_seconds(matter)
        updated = self._alpha * handle_seconds + (1 - self._alpha) * previous
        self._averages[matter] = updated
        return updated

    def average_seconds(self, matter: str) -> float:
        """The matter's average, or the default for a matter the catalogue does not know."""
        return self._averages.get(matter, self._default_seconds)

    def snapshot(self) -> dict[str, float]:
        return dict(self._averages)


def estimate_wait_minutes(
    position: int, avg_handle_seconds: float, eligible_clerks_online: int
) -> int | None:
    """Whole minutes until a clerk is likely free; ``None`` if no eligible clerk is online."""
    if position < 1:
        raise ValueError(f"position must be at least 1, got {position}")
    if avg_handle_seconds < 0:
        raise ValueError(f"avg_handle_seconds must not be negative, got {avg_handle_seconds}")
    if eligible_clerks_online <= 0:
        return None
    seconds = position * avg_handle_seconds / eligible_clerks_online
    return max(1, math.ceil(seconds / 60))


def format_wait(minutes: int | None) -> str:
    """Bilingual display text for an estimate from :func:`estimate_wait_minutes`."""
    if minutes is None:
        return NO_CLERK_TEXT
    return f"约 {minutes} 分钟 / about {minutes} min"
