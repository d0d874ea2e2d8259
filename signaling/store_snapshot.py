"""A node's copy of the shared queue state, valid while nobody else has written.

The Redis store reads every ticket, clerk and paused matter on every dispatch, position
push and join. While this node holds the queue lock nobody else writes, so one read per
lease is enough, and when the store's version counter (bumped by every write) is where
this node left it at its last release, the previous lease's copy is still exact and no
read is needed at all. When it is not, the copy is brought up to date with the records
the store's change log names since the copy's version (:meth:`Snapshot.refresh`), and
read whole only when the log no longer reaches back that far. Writes go to Redis first
and then to the copy here.

Pure: no I/O. The mutations mirror :class:`signaling.memory_store.MemoryStore`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from signaling.store import ClerkRecord, TicketRecord

_V = TypeVar("_V")


@dataclass
class Snapshot:
    tickets: dict[str, TicketRecord]
    owners: dict[str, str]
    clerks: dict[str, ClerkRecord]
    paused: set[str]
    version: int
    """The store's version this copy reflects."""
    writes: int = field(default=0)
    """Writes this node made since ``version`` (each bumps the counter by one)."""

    def ticket_of(self, owner: str) -> TicketRecord | None:
        ticket_id = self.owners.get(owner)
        return None if ticket_id is None else self.tickets.get(ticket_id)

    def add_ticket(self, record: TicketRecord) -> None:
        self.tickets[record.ticket.id] = record
        self.owners[record.owner] = record.ticket.id

    def put_ticket(self, record: TicketRecord) -> None:
        self.tickets[record.ticket.id] = record

    def remove_ticket(self, ticket_id: str) -> None:
        record = self.tickets.pop(ticket_id, None)
        if record is not None and self.owners.get(record.owner) == ticket_id:
            del self.owners[record.owner]

    def put_clerk(self, record: ClerkRecord) -> None:
        self.clerks[record.id] = record

    def claimed(self, ticket_id: str, offered: ClerkRecord, session_id: str) -> None:
        record = self.tickets[ticket_id]
        self.tickets[ticket_id] = replace(
            record, ticket=replace(record.ticket, offered_to=offered.id), session_id=session_id)
        self.clerks[offered.id] = offered

    def set_paused(self, matter: str, paused: bool) -> None:
        if paused:
            self.paused.add(matter)
        else:
            self.paused.discard(matter)

    def refresh(self, *, version: int, tickets: Mapping[str, TicketRecord | None],
                owners: Mapping[str, str | None], clerks: Mapping[str, ClerkRecord | None],
                paused: set[str] | None) -> None:
        """Bring the copy to ``version``, given every record written since the copy's
        version as the store holds it now (``None``: deleted; ``paused`` ``None``: no
        matter was paused or resumed). Records not named are unchanged since then."""
        _update(self.tickets, tickets)
        _update(self.owners, owners)
        _update(self.clerks, clerks)
        if paused is not None:
            self.paused = paused
        self.version, self.writes = version, 0


def _update(target: dict[str, _V], changed: Mapping[str, _V | None]) -> None:
    for key, value in changed.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
