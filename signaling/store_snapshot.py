"""A node's copy of the shared queue state, valid while nobody else has written.

The Redis store reads every ticket, clerk and paused matter on every dispatch, position
push and join. While this node holds the queue lock nobody else writes, so one read per
lease is enough, and when the store's version counter (bumped by every write) is where
this node left it at its last release, the previous lease's copy is still exact and no
read is needed at all. Writes go to Redis first and then to the copy here.

Pure: no I/O. The mutations mirror :class:`signaling.memory_store.MemoryStore`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from signaling.store import ClerkRecord, TicketRecord


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
