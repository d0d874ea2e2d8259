"""The in-memory state store: one process, one event loop.

Every method completes without awaiting anything, so each is atomic with respect to
the other coroutines of the loop; that is what makes ``claim_offer`` safe here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from signaling.presence import PresenceState
from signaling.replay import Numbered, ReplayLog
from signaling.sessions import Session
from signaling.store import ClerkRecord, TicketRecord


class MemoryStore:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._tickets: dict[str, TicketRecord] = {}
        self._owners: dict[str, str] = {}
        self._clerks: dict[str, ClerkRecord] = {}
        self._sessions: dict[str, Session] = {}
        self._paused: set[str] = set()
        self._replay: dict[str, ReplayLog] = {}

    @property
    def lock(self) -> asyncio.Lock:
        return self._lock

    async def add_ticket(self, record: TicketRecord) -> None:
        if record.ticket.id in self._tickets:
            raise KeyError(f"ticket {record.ticket.id} exists")
        self._tickets[record.ticket.id] = record
        self._owners[record.owner] = record.ticket.id

    async def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        return self._tickets.get(ticket_id)

    async def put_ticket(self, record: TicketRecord) -> None:
        self._tickets[record.ticket.id] = record

    async def remove_ticket(self, ticket_id: str) -> TicketRecord | None:
        record = self._tickets.pop(ticket_id, None)
        if record is not None and self._owners.get(record.owner) == ticket_id:
            del self._owners[record.owner]
        return record

    async def tickets(self) -> list[TicketRecord]:
        return list(self._tickets.values())

    async def ticket_of(self, owner: str) -> TicketRecord | None:
        ticket_id = self._owners.get(owner)
        return None if ticket_id is None else self._tickets.get(ticket_id)

    async def put_clerk(self, record: ClerkRecord) -> None:
        self._clerks[record.id] = record

    async def get_clerk(self, clerk_id: str) -> ClerkRecord | None:
        return self._clerks.get(clerk_id)

    async def clerks(self) -> list[ClerkRecord]:
        return list(self._clerks.values())

    async def claim_offer(self, ticket_id: str, offered: ClerkRecord, session: Session) -> bool:
        record = self._tickets.get(ticket_id)
        clerk = self._clerks.get(offered.id)
        if (record is None or clerk is None or record.ticket.offered_to is not None
                or record.session_id is not None or clerk.state is not PresenceState.AVAILABLE
                or clerk.offer_id is not None):
            return False
        self._tickets[ticket_id] = replace(
            record, ticket=replace(record.ticket, offered_to=offered.id),
            session_id=session.session_id)
        self._clerks[offered.id] = offered
        self._sessions[session.session_id] = session
        return True

    async def put_session(self, session: Session) -> None:
        self._sessions[session.session_id] = session

    async def get_session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    async def remove_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def paused(self) -> frozenset[str]:
        return frozenset(self._paused)

    async def set_paused(self, matter: str, paused: bool) -> None:
        if paused:
            self._paused.add(matter)
        else:
            self._paused.discard(matter)

    async def append_event(self, participant: str, event: str,
                           data: dict[str, Any]) -> Numbered:
        return self._replay.setdefault(participant, ReplayLog()).append(event, data)

    async def append_events(self, events: Sequence[tuple[str, str, dict[str, Any]]], *,
                            fresh: bool = False) -> list[Numbered]:
        if fresh:
            for participant, _, _ in events:
                self._replay.pop(participant, None)
        return [await self.append_event(*each) for each in events]

    async def events_since(self, participant: str, last_seq: int) -> list[Numbered] | None:
        log = self._replay.get(participant)
        return [] if log is None else log.since(last_seq)

    async def reset_events(self, participant: str) -> None:
        self._replay.pop(participant, None)
