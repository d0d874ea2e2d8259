"""A case's recordings, and where in them each document was captured.

A case spans every session of its ticket (a ticket requeued after a lost clerk has had
two), and each session may have several recorded segment files (``recordings`` rows,
written as each file is finished). A capture's place in the recording is found after the
fact, from the segment whose time span holds the capture's time: at capture time the
segment is still being written and has no row yet
(:func:`server.case_views.locate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.case_records import CaseRecord, DocumentRecord
from server.recordings import list_recordings
from server.storage import tables


async def case_recordings(conn: AsyncConnection, case: CaseRecord,
                          documents: Sequence[DocumentRecord]) -> list[dict[str, Any]]:
    """Every segment of every session of the case, in recording order, each with its
    ``session_id``."""
    sessions = {case.session_id} | {d.session_id for d in documents if d.session_id}
    journal = tables.service_sessions
    sessions |= set((await conn.execute(
        sa.select(journal.c.id).where(journal.c.ticket_id == case.ticket_id,
                                      journal.c.accepted_at.is_not(None)))).scalars())
    found = []
    for session_id in sorted(sessions):
        found += [{"session_id": session_id, **r}
                  for r in await list_recordings(conn, session_id)]
    return sorted(found, key=lambda r: (r["started_at"], r["segment_index"]))
