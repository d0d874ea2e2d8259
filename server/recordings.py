"""Recording consent and recorded segments, as the case file keeps them.

A consent row is written (with its audit row, in one transaction) before anything can
be recorded; the latest row for a session decides, so a citizen can withdraw. Each
finished segment file becomes a ``recordings`` row with its SHA-256 and duration, the
path relative to the recordings directory, and the consent it was recorded under, so a
case export lists exactly the files that belong to its session.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from media.recorder import Segment
from server import audit
from server.storage import tables
from server.storage.database import Database
from server.storage.types import utcnow

SYSTEM = "system"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass(frozen=True, slots=True)
class Consent:
    id: str
    session_id: str
    participant: str
    granted: bool
    notice: str | None
    at: datetime

    def public(self) -> dict[str, Any]:
        return {"consent_id": self.id, "session_id": self.session_id,
                "granted": self.granted, "notice": self.notice, "at": self.at.isoformat()}


async def record_consent(db: Database, *, session_id: str, participant: str, role: str,
                         granted: bool, notice: str | None) -> Consent:
    consent = Consent(new_id("rc"), session_id, participant, granted, notice, utcnow())
    async with db.begin() as conn:
        await conn.execute(sa.insert(tables.recording_consents).values(
            id=consent.id, session_id=session_id, participant=participant[:160],
            granted=granted, notice=notice, at=consent.at))
        await audit.record(conn, actor=participant, role=role, action="recording.consent",
                           object_type="session", object_id=session_id,
                           outcome="granted" if granted else "refused",
                           detail={"consent_id": consent.id, "notice": notice})
    return consent


async def current_consent(db: Database, session_id: str) -> Consent | None:
    """The session's latest consent answer, or None if the citizen gave none."""
    table = tables.recording_consents
    async with db.connect() as conn:
        row = (await conn.execute(
            sa.select(table).where(table.c.session_id == session_id)
            .order_by(table.c.at.desc()).limit(1))).first()
    if row is None:
        return None
    return Consent(row.id, row.session_id, row.participant, row.granted, row.notice, row.at)


def stored_path(path: Path, root: Path) -> str:
    """The file's path under the recordings directory, as the database keeps it."""
    return Path(os.path.relpath(path, root)).as_posix()


async def store_segment(db: Database, segment: Segment, root: Path) -> str:
    """One ``recordings`` row (and an audit row) for a finished segment file."""
    recording_id = new_id("rec")
    path = stored_path(segment.path, root)
    async with db.begin() as conn:
        await conn.execute(sa.insert(tables.recordings).values(
            id=recording_id, session_id=segment.session_id, consent_id=segment.consent_id,
            segment_index=segment.index, path=path, sha256=segment.sha256,
            duration_s=segment.duration_s, size_bytes=segment.size_bytes,
            container=segment.path.suffix.lstrip("."), codecs="+".join(segment.codecs),
            tracks=list(segment.tracks),
            started_at=datetime.fromtimestamp(segment.started_at, UTC), created_at=utcnow()))
        await audit.record(conn, actor=SYSTEM, role=SYSTEM, action="recording.segment",
                           object_type="session", object_id=segment.session_id,
                           outcome="success",
                           detail={"recording_id": recording_id, "sha256": segment.sha256,
                                   "duration_s": round(segment.duration_s, 3)})
    return recording_id


async def list_recordings(conn: AsyncConnection, session_id: str) -> list[dict[str, Any]]:
    """The session's segments in recording order, for the case file and its export."""
    table = tables.recordings
    rows = (await conn.execute(
        sa.select(table).where(table.c.session_id == session_id)
        .order_by(table.c.started_at, table.c.segment_index))).all()
    return [
        {"recording_id": row.id, "consent_id": row.consent_id,
         "segment_index": row.segment_index, "path": row.path, "sha256": row.sha256,
         "duration_s": row.duration_s, "size_bytes": row.size_bytes,
         "container": row.container, "codecs": row.codecs, "tracks": list(row.tracks),
         "started_at": row.started_at.isoformat()}
        for row in rows
    ]
