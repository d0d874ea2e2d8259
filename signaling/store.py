"""The queue's state store: the one place tickets, clerk presence, offers and sessions
live between events.

The interface is async and record-shaped so that a Redis implementation (several
nodes) can run the same test suite as the in-memory one. ``claim_offer`` is the one
operation that must be atomic across nodes: a ticket is offered to at most one clerk
and a clerk holds at most one offer, even when two dispatchers race.

``lock`` serializes the shell's read-modify-write of records: an asyncio lock for one
process, a lease on Redis across nodes (see :mod:`signaling.redis_lock`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Protocol

from signaling.dispatcher import Clerk
from signaling.presence import ClerkPresence, PresenceState
from signaling.replay import Numbered
from signaling.sessions import Session
from signaling.tickets import Ticket


@dataclass(frozen=True, slots=True)
class ClerkRecord:
    """A clerk as the queue knows them: who they are and their presence fields."""

    id: str
    """The clerk's username; also the dispatcher's clerk id."""
    display_name: str
    skills: frozenset[str]
    jurisdictions: frozenset[str]
    state: PresenceState = PresenceState.OFFLINE
    consecutive_misses: int = 0
    idle_since: float | None = None
    sessions_today: int = 0
    missed: frozenset[str] = field(default_factory=frozenset)
    offer_id: str | None = None
    session_id: str | None = None
    wrap_up_until: float | None = None
    """When a timed wrap-up ends (epoch seconds), so that any node can end it: the timer
    lives on one node, which may die."""
    _snapshot: Clerk | None = field(default=None, init=False, compare=False, repr=False)

    def presence(self, miss_limit: int) -> ClerkPresence:
        return ClerkPresence(self.id, state=self.state,
                             consecutive_misses=self.consecutive_misses,
                             idle_since=self.idle_since, sessions_today=self.sessions_today,
                             miss_limit=miss_limit)

    def with_presence(self, presence: ClerkPresence) -> ClerkRecord:
        return replace(self, state=presence.state,
                       consecutive_misses=presence.consecutive_misses,
                       idle_since=presence.idle_since, sessions_today=presence.sessions_today)

    def snapshot(self) -> Clerk:
        """The dispatcher's view, built once per record (records are immutable and the
        dispatcher reads every clerk on every dispatch)."""
        if self._snapshot is None:
            object.__setattr__(self, "_snapshot", Clerk(
                self.id, self.skills, self.jurisdictions, self.state, self.idle_since,
                self.sessions_today, self.missed))
        assert self._snapshot is not None
        return self._snapshot


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """A waiting ticket and who it belongs to (the participant key of the citizen side)."""

    ticket: Ticket
    owner: str
    region: str
    session_id: str | None = None
    """The offer/session currently attached, if any."""


class QueueLock(Protocol):
    """What ``async with`` needs; :class:`asyncio.Lock` is one."""

    def locked(self) -> bool: ...
    async def __aenter__(self) -> None: ...
    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...


class QueueStore(Protocol):
    @property
    def lock(self) -> QueueLock:
        """Held by the queue shell around every change it makes."""
        ...

    async def add_ticket(self, record: TicketRecord) -> None: ...
    async def get_ticket(self, ticket_id: str) -> TicketRecord | None: ...
    async def put_ticket(self, record: TicketRecord) -> None: ...
    async def remove_ticket(self, ticket_id: str) -> TicketRecord | None: ...
    async def tickets(self) -> list[TicketRecord]: ...
    async def ticket_of(self, owner: str) -> TicketRecord | None: ...

    async def put_clerk(self, record: ClerkRecord) -> None: ...
    async def get_clerk(self, clerk_id: str) -> ClerkRecord | None: ...
    async def clerks(self) -> list[ClerkRecord]: ...

    async def claim_offer(self, ticket_id: str, offered: ClerkRecord, session: Session) -> bool:
        """Atomically: if the ticket waits without an offer and the clerk is still
        available without one, store ``offered`` (the clerk already moved to ``offered``
        with ``offer_id`` set), mark the ticket offered and store ``session``. Otherwise
        change nothing and return False."""
        ...

    async def put_session(self, session: Session) -> None: ...
    async def get_session(self, session_id: str) -> Session | None: ...
    async def remove_session(self, session_id: str) -> None: ...

    async def paused(self) -> frozenset[str]: ...
    async def set_paused(self, matter: str, paused: bool) -> None: ...

    async def append_event(self, participant: str, event: str,
                           data: dict[str, Any]) -> Numbered:
        """Number and keep an event sent to a session participant (for resume)."""
        ...

    async def append_events(self, events: Sequence[tuple[str, str, dict[str, Any]]], *,
                            fresh: bool = False) -> list[Numbered]:
        """``append_event`` for several ``(participant, event, data)`` at once, in order
        (one Redis round trip); ``fresh``: ``reset_events`` each participant first."""
        ...

    async def events_since(self, participant: str, last_seq: int) -> list[Numbered] | None:
        """What the participant missed after ``last_seq``; None when it must resync."""
        ...

    async def reset_events(self, participant: str) -> None:
        """A new session: numbering starts again at 1."""
        ...
