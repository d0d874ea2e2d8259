"""The case side of the queue: open a case when a clerk accepts, note when the session
ends, and tell the session's two participants about their case over socket.io.

Case events are not numbered for replay like ``session.*``: a page that reconnects asks
``GET /api/sessions/{id}/case`` for the current state instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from server.case_openings import Opening
from server.case_records import CaseRecord
from server.case_writer import CaseWriter
from server.catalogue import KioskConfig
from server.settings import Settings
from server.storage.database import Database
from signaling.notifier import Notifier

log = structlog.get_logger("xiaowu.cases")


def opened_event(case: CaseRecord) -> dict[str, Any]:
    return {"case_id": case.id, "number": case.number, "session_id": case.session_id,
            "status": str(case.status)}


class CaseEvents:
    """Implements :class:`signaling.case_hooks.CaseHooks`."""

    def __init__(self, db: Database, config: KioskConfig, notifier: Notifier,
                 settings: Settings) -> None:
        self.db = db
        self.config = config
        self.notifier = notifier
        self.prefix = settings.case_number_prefix
        self.writer = CaseWriter(db)

    async def session_accepted(self, *, session_id: str, ticket_id: str, matter: str,
                               channel: str, hut_id: str | None, owner: str,
                               clerk_id: str) -> None:
        # Queued before the first await, so a session's end (asked later) is written
        # after its opening, in the same order.
        case, created = await self.writer.open(Opening(
            ticket_id=ticket_id, session_id=session_id, matter=self.config.matter(matter),
            channel=channel, hut_id=hut_id, owner=owner, clerk=clerk_id, prefix=self.prefix))
        log.info("case.opened" if created else "case.followed", case=case.number,
                 session=session_id, clerk=clerk_id)
        await self.tell(case, "case.opened", opened_event(case))

    async def session_ended(self, *, session_id: str, at: float) -> None:
        await self.writer.session_ended(session_id, datetime.fromtimestamp(at, UTC))

    async def close(self) -> None:
        await self.writer.close()

    async def tell(self, case: CaseRecord, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to the case's clerk and its citizen side (every socket of each)."""
        for participant in (case.clerk_key, case.owner):
            await self.notifier.send(participant, event, data)
