"""Retention purge on SQLite and PostgreSQL: old recordings and unused drafts go, with an
audit row each; recent ones, cases with content and files named by a row stay."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from server.retention import purge
from server.storage import tables
from server.storage.database import Database
from server.storage.types import utcnow
from tests.integration.test_cli import run

NOW = utcnow()
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=2)


async def _case(db: Database, case_id: str, status: str, created: datetime,
                *, with_document: bool = False) -> None:
    async with db.begin() as conn:
        await conn.execute(sa.insert(tables.cases).values(
            id=case_id, number=f"DY-2026-{case_id}", ticket_id=f"t{case_id}",
            session_id=f"s{case_id}", matter="M", channel="kiosk", owner="kiosk:k1",
            clerk="c1", status=status, created_at=created, updated_at=created))
        await conn.execute(sa.insert(tables.case_slots).values(
            case_id=case_id, key="id_card_front", position=0, kind="id_card_front",
            required=True, name_zh="身份证", name_en="ID card"))
        if with_document:
            sha = (case_id * 64)[:64]
            await conn.execute(sa.insert(tables.blobs).values(
                sha256=sha, size=1, content_type="image/jpeg", created_at=created))
            await conn.execute(sa.insert(tables.case_documents).values(
                id=f"d{case_id}", case_id=case_id, slot="id_card_front", path="upload",
                actor="kiosk:k1", captured_at=created, original_sha256=sha, original_size=1,
                original_type="image/jpeg", original_width=1, original_height=1,
                processed_sha256=sha, processed_size=1, processed_type="image/jpeg",
                processed_width=1, processed_height=1, quality={}))


async def _recording(db: Database, directory: Path, rec_id: str, created: datetime) -> Path:
    relative = f"s{rec_id}/s{rec_id}-0000.webm"
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"webm")
    os.utime(path, (created.timestamp(), created.timestamp()))
    async with db.begin() as conn:
        await conn.execute(sa.insert(tables.recording_consents).values(
            id=f"c{rec_id}", session_id=f"s{rec_id}", participant="kiosk:k1", granted=True,
            at=created))
        await conn.execute(sa.insert(tables.recordings).values(
            id=rec_id, session_id=f"s{rec_id}", consent_id=f"c{rec_id}", segment_index=0,
            path=relative, sha256="0" * 64, duration_s=10.0, size_bytes=4, container="webm",
            codecs="VP8+opus", tracks=[], started_at=created, created_at=created))
    return path


async def _ids(db: Database, table: sa.Table) -> set[Any]:
    async with db.connect() as conn:
        return set((await conn.execute(sa.select(table.c.id))).scalars())


async def _audit(db: Database) -> list[tuple[str, str]]:
    log = tables.audit_log
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(log.c.action, log.c.object_id)
                                  .where(log.c.actor == "retention").order_by(log.c.id))
        return [(row.action, row.object_id) for row in rows]


async def test_purge_removes_only_what_is_past_its_keeping(database: Database,
                                                           tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    old_file = await _recording(database, directory, "r1", OLD)
    new_file = await _recording(database, directory, "r2", RECENT)
    stray = directory / "s9" / "s9-0000.webm"  # a crash between row and file removal
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    os.utime(stray, (OLD.timestamp(), OLD.timestamp()))
    await _case(database, "000001", "draft", OLD)
    await _case(database, "000002", "draft", RECENT)
    await _case(database, "000003", "in_progress", OLD)
    await _case(database, "000004", "draft", OLD, with_document=True)

    dry = await purge(database, directory, recordings_days=180, drafts_days=30, now=NOW,
                      dry_run=True)
    assert (dry.recordings, dry.drafts) == (["r1"], ["DY-2026-000001"])
    assert old_file.exists() and await _ids(database, tables.recordings) == {"r1", "r2"}

    report = await purge(database, directory, recordings_days=180, drafts_days=30, now=NOW)
    assert report.recordings == ["r1"]
    assert sorted(report.recording_files) == ["s9/s9-0000.webm", "sr1/sr1-0000.webm"]
    assert report.drafts == ["DY-2026-000001"]
    assert not old_file.exists() and not stray.exists() and new_file.exists()
    assert await _ids(database, tables.recordings) == {"r2"}
    assert await _ids(database, tables.cases) == {"000002", "000003", "000004"}
    async with database.connect() as conn:
        slots = set((await conn.execute(sa.select(tables.case_slots.c.case_id))).scalars())
    assert slots == {"000002", "000003", "000004"}
    assert await _audit(database) == [("recording.purge", "r1"), ("case.purge", "000001")]

    again = await purge(database, directory, recordings_days=180, drafts_days=30, now=NOW)
    assert again.as_dict() == {"recordings": 0, "recording_files": 0, "drafts": 0}


async def test_a_row_naming_a_path_outside_the_directory_deletes_nothing_there(
        database: Database, tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"keep")
    async with database.begin() as conn:
        await conn.execute(sa.insert(tables.recording_consents).values(
            id="c1", session_id="s1", participant="kiosk:k1", granted=True, at=OLD))
        await conn.execute(sa.insert(tables.recordings).values(
            id="r1", session_id="s1", consent_id="c1", segment_index=0, path="../precious.txt",
            sha256="0" * 64, duration_s=1.0, size_bytes=4, container="webm", codecs="VP8",
            tracks=[], started_at=OLD, created_at=OLD))
    report = await purge(database, tmp_path / "recordings", recordings_days=1,
                         drafts_days=None, now=NOW)
    assert report.recordings == ["r1"] and report.recording_files == []
    assert outside.read_bytes() == b"keep"


def test_cli_needs_something_to_purge_and_reports_counts(tmp_path: Path) -> None:
    """Run as a real process: the CLI configures logging for its own stdout."""
    assert run("purge", data_dir=tmp_path, check=False).returncode == 2
    result = run("purge", "--drafts-days", "7", "--dry-run", data_dir=tmp_path)
    assert "would remove: 0 recordings (0 files), 0 draft cases" in result.stdout
