"""What the queue tells the case files: a session started, a session ended.

The queue calls these as owned background tasks, outside its lock, so opening a case (a
database transaction) never holds up an offer. The case side must tolerate a call for a
session it does not know and must not raise for a client's mistake.
"""

from __future__ import annotations

from typing import Protocol


class CaseHooks(Protocol):
    async def session_accepted(self, *, session_id: str, ticket_id: str, matter: str,
                               channel: str, hut_id: str | None, owner: str,
                               clerk_id: str) -> None:
        """A clerk accepted the ticket's offer: open its case (or move it to this session)."""
        ...

    async def session_ended(self, *, session_id: str, at: float) -> None:
        """The session ended (any outcome); a requeued ticket's case is moved on by the
        next ``session_accepted``."""
        ...
