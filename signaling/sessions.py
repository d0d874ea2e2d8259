"""Session lifecycle: one citizen and one clerk, from the offer to the end.

``offered -> accepted -> connecting -> active -> ended``, and ``ended`` from any
earlier state. Like :mod:`signaling.presence`, one method validates and applies
every change and returns a frozen event; the shell logs and persists it.

Why an offer is already a session: the Redis store claims an offer atomically,
and from then on the offer, the call and its end must be one record, so a
declined or timed-out offer is a session that ended ``abandoned`` with the reason
``declined`` / ``timeout``. ``completed`` is allowed only from ``active``: a call
that never carried media cannot have served anyone.

A dropped participant reconnecting inside the grace period (ICE restart) keeps the
session ``active``; the state does not go back to ``connecting``, so handle time is
measured from the first time media flowed.

Wait time is measured from the ticket's creation, not from this offer, so for a
ticket requeued after a lost clerk it includes the failed attempt: that is what
the citizen sat through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from server.errors import InvalidTransition


class SessionState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    CONNECTING = "connecting"
    ACTIVE = "active"
    ENDED = "ended"


class Outcome(StrEnum):
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    FAILED = "failed"


_S = SessionState

ALLOWED: dict[SessionState, frozenset[SessionState]] = {
    _S.OFFERED: frozenset({_S.ACCEPTED, _S.ENDED}),
    _S.ACCEPTED: frozenset({_S.CONNECTING, _S.ENDED}),
    _S.CONNECTING: frozenset({_S.ACTIVE, _S.ENDED}),
    _S.ACTIVE: frozenset({_S.ENDED}),
    _S.ENDED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One accepted session change; ``outcome`` is set only on the move to ``ended``."""

    session_id: str
    old: SessionState
    new: SessionState
    reason: str
    at: float
    outcome: Outcome | None = None

    def __str__(self) -> str:
        end = f", {self.outcome}" if self.outcome is not None else ""
        return f"session {self.session_id}: {self.old} -> {self.new} ({self.reason}{end})"


class Session:
    """One session's state and the time it entered each state."""

    __slots__ = ("clerk_id", "end_reason", "entered", "media_node", "outcome", "session_id",
                 "state", "ticket_created_at", "ticket_id")

    def __init__(
        self,
        session_id: str,
        *,
        ticket_id: str,
        clerk_id: str,
        ticket_created_at: float,
        offered_at: float,
        state: SessionState = SessionState.OFFERED,
        entered: Mapping[SessionState, float] | None = None,
        outcome: Outcome | None = None,
        end_reason: str | None = None,
        media_node: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.ticket_id = ticket_id
        self.clerk_id = clerk_id
        self.ticket_created_at = ticket_created_at
        self.state = state
        self.entered: dict[SessionState, float] = {SessionState.OFFERED: offered_at}
        self.entered.update(entered or {})
        self.outcome = outcome
        self.end_reason = end_reason
        self.media_node = media_node
        """The node id holding the session's timers while offered and its media once
        accepted (several nodes); a node found dead ends the sessions pinned to it."""

    def __repr__(self) -> str:
        return (f"Session({self.session_id!r}, ticket={self.ticket_id!r}, "
                f"clerk={self.clerk_id!r}, state={self.state}, outcome={self.outcome})")

    def transition(
        self,
        new: SessionState,
        *,
        reason: str,
        now: float,
        outcome: Outcome | None = None,
    ) -> SessionEvent:
        """Move to ``new``; ``outcome`` is required exactly when ``new`` is ``ended``."""
        old = self.state
        if (new is _S.ENDED) != (outcome is not None):
            raise ValueError(f"outcome must be given exactly when ending, got {outcome!r} "
                             f"for {old} -> {new}")
        if new not in ALLOWED[old]:
            self._refuse(new, "不允许的状态变更", "not an allowed transition")
        if outcome is Outcome.COMPLETED and old is not _S.ACTIVE:
            self._refuse(new, "未接通的会话不能办结", "only an active session can complete")
        self.state = new
        self.entered[new] = now
        if outcome is not None:
            self.outcome = outcome
            self.end_reason = reason
        return SessionEvent(self.session_id, old, new, reason, now, outcome)

    def _refuse(self, new: SessionState, why_zh: str, why_en: str) -> NoReturn:
        raise InvalidTransition(
            f"会话 {self.session_id} 状态不能从 {self.state} 变为 {new}：{why_zh}",
            f"session {self.session_id} cannot go from {self.state} to {new}: {why_en}",
            detail={"current": str(self.state), "requested": str(new)},
        )

    @property
    def wait_seconds(self) -> float | None:
        """Ticket created to accepted; ``None`` until accepted."""
        accepted = self.entered.get(_S.ACCEPTED)
        return None if accepted is None else accepted - self.ticket_created_at

    @property
    def handle_seconds(self) -> float | None:
        """Active to ended; ``None`` unless the session both carried media and ended."""
        active = self.entered.get(_S.ACTIVE)
        ended = self.entered.get(_S.ENDED)
        return None if active is None or ended is None else ended - active
