"""Clerk presence: the state machine behind "who can take the next citizen".

Every change goes through :meth:`ClerkPresence.transition`, which validates it
against :data:`ALLOWED` and returns a frozen :class:`PresenceEvent`. The machine
does no logging or persistence itself: the shell logs ``old -> new`` from the event
and stores it, so the same rules hold in one process and behind a Redis store.

Missed offers. Only an offer the clerk declined or let time out is a miss
(:class:`MissReason`); an offer withdrawn because the citizen left is not the
clerk's fault and says so with any other reason. The ``miss_limit``-th consecutive
miss must go to ``away`` rather than ``available``: the machine refuses the wrong
target instead of silently changing it, so a caller that forgets the rule fails
loudly; :meth:`ClerkPresence.miss` picks the right target. The count resets on
accept (the spec) and also when the clerk comes back from ``away`` or logs in,
because coming back is the clerk confirming they are at the desk; without that, a
returning clerk would be sent away again by a single miss.

``idle_since`` is stamped on every entry into ``available``, including after a
decline: the longest-idle rule then moves a clerk who just refused an offer to
the back of the line. It is only meaningful while the clerk is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from server.errors import InvalidTransition


class PresenceState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    OFFERED = "offered"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    AWAY = "away"
    BREAK = "break"


class MissReason(StrEnum):
    """The reasons for leaving ``offered`` that count as a missed offer."""

    DECLINED = "declined"
    TIMEOUT = "timeout"


_S = PresenceState
_MISS_REASONS = frozenset(r.value for r in MissReason)

ALLOWED: dict[PresenceState, frozenset[PresenceState]] = {
    _S.OFFLINE: frozenset({_S.AVAILABLE}),
    _S.AVAILABLE: frozenset({_S.OFFERED, _S.AWAY, _S.BREAK, _S.OFFLINE}),
    _S.OFFERED: frozenset({_S.AVAILABLE, _S.BUSY, _S.AWAY, _S.OFFLINE}),
    _S.BUSY: frozenset({_S.WRAP_UP, _S.OFFLINE}),
    _S.WRAP_UP: frozenset({_S.AVAILABLE, _S.BREAK, _S.OFFLINE}),
    _S.AWAY: frozenset({_S.AVAILABLE, _S.OFFLINE}),
    _S.BREAK: frozenset({_S.AVAILABLE, _S.OFFLINE}),
}
"""Allowed transitions; staying in the same state is never a transition."""

# States in which a clerk is at the desk and will take a citizen without first
# coming back from a pause; the dispatcher waits for these before re-offering a
# ticket to a clerk who already missed it.
WORKING: frozenset[PresenceState] = frozenset({_S.AVAILABLE, _S.OFFERED, _S.BUSY, _S.WRAP_UP})


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """One accepted presence change, as logged and persisted by the shell."""

    clerk_id: str
    old: PresenceState
    new: PresenceState
    reason: str
    at: float

    def __str__(self) -> str:
        return f"clerk {self.clerk_id}: {self.old} -> {self.new} ({self.reason})"


class ClerkPresence:
    """The presence of one clerk; rebuild it from stored fields with the constructor."""

    __slots__ = ("clerk_id", "consecutive_misses", "idle_since", "miss_limit",
                 "sessions_today", "state")

    def __init__(
        self,
        clerk_id: str,
        *,
        state: PresenceState = PresenceState.OFFLINE,
        consecutive_misses: int = 0,
        idle_since: float | None = None,
        sessions_today: int = 0,
        miss_limit: int = 2,
    ) -> None:
        if miss_limit < 1:
            raise ValueError(f"miss_limit must be at least 1, got {miss_limit}")
        self.clerk_id = clerk_id
        self.state = state
        self.consecutive_misses = consecutive_misses
        self.idle_since = idle_since
        self.sessions_today = sessions_today
        self.miss_limit = miss_limit

    def __repr__(self) -> str:
        return (f"ClerkPresence({self.clerk_id!r}, state={self.state}, "
                f"misses={self.consecutive_misses}, idle_since={self.idle_since}, "
                f"sessions_today={self.sessions_today})")

    def transition(self, new: PresenceState, *, reason: str, now: float) -> PresenceEvent:
        """Move to ``new`` or raise :class:`InvalidTransition` naming both states."""
        old = self.state
        if new not in ALLOWED[old]:
            self._refuse(new, "不允许的状态变更", "not an allowed transition")
        missed = old is _S.OFFERED and reason in _MISS_REASONS
        if old is _S.OFFERED and new is _S.AWAY:
            if not missed or self.consecutive_misses + 1 < self.miss_limit:
                self._refuse(new, f"连续错过 {self.miss_limit} 次才转为离开",
                             f"only miss {self.miss_limit} in a row goes away")
        elif missed and new is _S.AVAILABLE and self.consecutive_misses + 1 >= self.miss_limit:
            self._refuse(new, f"连续错过 {self.miss_limit} 次须转为离开",
                         f"miss {self.miss_limit} in a row must go to away")

        if missed:
            self.consecutive_misses += 1
        if new is _S.BUSY or (new is _S.AVAILABLE and old in (_S.AWAY, _S.OFFLINE)):
            self.consecutive_misses = 0
        if new is _S.BUSY:
            self.sessions_today += 1
        if new is _S.AVAILABLE:
            self.idle_since = now
        self.state = new
        return PresenceEvent(self.clerk_id, old, new, reason, now)

    def miss(self, reason: MissReason, *, now: float) -> PresenceEvent:
        """Record a declined or timed-out offer, going away on the limit-th miss in a row."""
        if self.state is _S.OFFERED and self.consecutive_misses + 1 >= self.miss_limit:
            return self.transition(_S.AWAY, reason=reason, now=now)
        return self.transition(_S.AVAILABLE, reason=reason, now=now)

    def reset_day(self) -> None:
        """Start a new working day's count; the shell calls it at local midnight."""
        self.sessions_today = 0

    def _refuse(self, new: PresenceState, why_zh: str, why_en: str) -> NoReturn:
        raise InvalidTransition(
            f"工作人员 {self.clerk_id} 状态不能从 {self.state} 变为 {new}：{why_zh}",
            f"clerk {self.clerk_id} cannot go from {self.state} to {new}: {why_en}",
            detail={"current": str(self.state), "requested": str(new)},
        )
