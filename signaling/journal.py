"""What the queue reports for the record: tickets, presence changes, session changes.

The queue calls these synchronously on its hot path; an implementation must only
enqueue (the database one batches writes in the background), so a slow disk never
delays an offer.
"""

from __future__ import annotations

from typing import Any, Protocol

from signaling.presence import PresenceEvent
from signaling.sessions import Session, SessionEvent
from signaling.store import TicketRecord


class Journal(Protocol):
    def ticket_opened(self, record: TicketRecord) -> None: ...
    def ticket_closed(self, ticket_id: str, reason: str, at: float) -> None: ...
    def presence(self, event: PresenceEvent) -> None: ...
    def session(self, session: Session, event: SessionEvent | None, matter: str) -> None:
        """Record the session's current state; ``event`` is None when it is created."""
        ...

    def audit(self, *, actor: str, role: str, action: str, object_type: str,
              object_id: str | None, outcome: str,
              detail: dict[str, Any] | None = None) -> None:
        """Append to the audit log: every clerk and supervisor action on the queue."""
        ...
