"""Retention: purge call recordings and never-used draft cases after their keeping period.

Run by ``xiaowu purge`` (from cron or a systemd timer on one node); every removal is an
audit row written in the transaction that deletes the record. Documents and cases that
went past ``draft`` are never purged here: they are government records, exported to the
records system (docs/operations.md).

Order: a recording's row goes first (with its audit row), its file after. A crash in
between leaves a file without a row; the sweep at the end of every run removes recording
files older than the cut-off that no row names, so a rerun finishes the job and nothing a
row still names is ever deleted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import structlog

from server import audit
from server.storage import tables
from server.storage.database import Database
from server.storage.types import utcnow

log = structlog.get_logger("xiaowu.retention")
ACTOR = "retention"


@dataclass
class PurgeReport:
    recordings: list[str] = field(default_factory=list)  # recording ids removed
    recording_files: list[str] = field(default_factory=list)  # paths, relative to the dir
    drafts: list[str] = field(default_factory=list)  # case numbers removed

    def as_dict(self) -> dict[str, int]:
        return {"recordings": len(self.recordings),
                "recording_files": len(self.recording_files),
                "drafts": len(self.drafts)}


async def purge(db: Database, recording_dir: Path, *, recordings_days: int | None,
                drafts_days: int | None, now: datetime | None = None,
                dry_run: bool = False) -> PurgeReport:
    """Remove recordings older than ``recordings_days`` and drafts older than
    ``drafts_days`` (None: keep that kind). ``dry_run`` reports without removing."""
    now = now or utcnow()
    report = PurgeReport()
    if recordings_days is not None:
        cutoff = now - timedelta(days=recordings_days)
        await _purge_recordings(db, recording_dir, cutoff, report, dry_run)
        if not dry_run:
            report.recording_files += await _sweep_recording_files(db, recording_dir, cutoff)
    if drafts_days is not None:
        await _purge_drafts(db, now - timedelta(days=drafts_days), report, dry_run)
    log.info("retention.purged", dry_run=dry_run, **report.as_dict())
    return report


async def _purge_recordings(db: Database, directory: Path, cutoff: datetime,
                            report: PurgeReport, dry_run: bool) -> None:
    rec = tables.recordings
    async with db.begin() as conn:
        rows = (await conn.execute(
            sa.select(rec.c.id, rec.c.session_id, rec.c.path, rec.c.sha256)
            .where(rec.c.created_at < cutoff).order_by(rec.c.created_at)
        )).all()
        if dry_run:
            report.recordings += [row.id for row in rows]
            return
        for row in rows:
            await conn.execute(sa.delete(rec).where(rec.c.id == row.id))
            await audit.record(conn, actor=ACTOR, role="system", action="recording.purge",
                               object_type="recording", object_id=row.id, outcome="ok",
                               detail={"session_id": row.session_id, "path": row.path,
                                       "sha256": row.sha256})
    for row in rows:
        report.recordings.append(row.id)
        target = _inside(directory, row.path)
        if target is not None and await asyncio.to_thread(_unlink, target):
            report.recording_files.append(row.path)


async def _sweep_recording_files(db: Database, directory: Path, cutoff: datetime) -> list[str]:
    """Recording files older than the cut-off that no row names (left by a crash)."""
    async with db.connect() as conn:
        named = set((await conn.execute(sa.select(tables.recordings.c.path))).scalars())

    def sweep() -> list[str]:
        removed: list[str] = []
        if not directory.is_dir():
            return removed
        limit = cutoff.timestamp()
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if (path.is_file() and relative not in named
                    and path.stat().st_mtime < limit and _unlink(path)):
                removed.append(relative)
        return removed

    return await asyncio.to_thread(sweep)


async def _purge_drafts(db: Database, cutoff: datetime, report: PurgeReport,
                        dry_run: bool) -> None:
    """Cases still ``draft`` (nothing was ever captured or written) past the cut-off."""
    cases, docs = tables.cases, tables.case_documents
    async with db.begin() as conn:
        rows = (await conn.execute(
            sa.select(cases.c.id, cases.c.number, cases.c.matter)
            .where(cases.c.status == "draft", cases.c.created_at < cutoff,
                   ~sa.exists().where(docs.c.case_id == cases.c.id))
        )).all()
        if not dry_run:
            for row in rows:
                await conn.execute(sa.delete(tables.case_upload_keys)
                                   .where(tables.case_upload_keys.c.case_id == row.id))
                await conn.execute(sa.delete(tables.case_slots)
                                   .where(tables.case_slots.c.case_id == row.id))
                await conn.execute(sa.delete(cases).where(cases.c.id == row.id))
                await audit.record(conn, actor=ACTOR, role="system", action="case.purge",
                                   object_type="case", object_id=row.id, outcome="ok",
                                   detail={"number": row.number, "matter": row.matter})
    report.drafts += [row.number for row in rows]


def _inside(directory: Path, relative: str) -> Path | None:
    """The file a row names, refusing anything that would leave the recording dir."""
    target = (directory / relative).resolve()
    return target if target.is_relative_to(directory.resolve()) else None


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
