"""Storage on SQLite and PostgreSQL: migrations, UTC columns, the append-only audit log,
and the blob store's write-before-commit discipline."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from server import audit
from server.storage import tables
from server.storage.blobs import BlobStore, register_blob, sweep_orphans
from server.storage.database import Database, head_revision


async def test_migrations_reach_head_and_match_the_table_definitions(database: Database) -> None:
    assert await database.is_current()
    assert await database.current_revision() == head_revision()

    def columns(conn: Connection) -> dict[str, set[str]]:
        inspector = sa.inspect(conn)
        return {t: {c["name"] for c in inspector.get_columns(t)}
                for t in inspector.get_table_names() if t != "alembic_version"}

    async with database.connect() as conn:
        found = await conn.run_sync(columns)
    expected = {name: {c.name for c in table.columns}
                for name, table in tables.metadata.tables.items()}
    assert found == expected


async def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with db.connect() as conn:
            assert (await conn.scalar(sa.text("PRAGMA journal_mode"))) == "wal"
            assert (await conn.scalar(sa.text("PRAGMA synchronous"))) == 2  # FULL
    finally:
        await db.close()


async def test_datetimes_come_back_aware_and_in_utc(database: Database) -> None:
    shanghai = timezone(timedelta(hours=8))
    moment = datetime(2026, 11, 23, 9, 30, tzinfo=shanghai)
    async with database.begin() as conn:
        await conn.execute(sa.insert(tables.blobs).values(
            sha256="a" * 64, size=1, content_type="x", created_at=moment))
    async with database.connect() as conn:
        stored = await conn.scalar(sa.select(tables.blobs.c.created_at))
    assert stored == moment
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored.hour == 1


async def test_audit_rows_are_append_only(database: Database) -> None:
    async with database.begin() as conn:
        await audit.record(conn, actor="clerk:wangli", role="clerk", action="case.read",
                           object_type="case", object_id="DY-2026-000001", outcome="success",
                           detail={"fields": ["applicant"]})
    async with database.connect() as conn:
        row = (await conn.execute(sa.select(tables.audit_log))).one()
    assert (row.actor, row.action, row.outcome) == ("clerk:wangli", "case.read", "success")
    assert row.detail == {"fields": ["applicant"]}

    for statement in (
        sa.update(tables.audit_log).values(outcome="forged"),
        sa.delete(tables.audit_log),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with database.begin() as conn:
                await conn.execute(statement)
    async with database.connect() as conn:
        after = (await conn.execute(sa.select(tables.audit_log))).one()
    assert after.outcome == "success"


async def test_postgres_refuses_truncate_of_the_audit_log(database: Database) -> None:
    if database.dialect != "postgresql":
        return  # SQLite has no TRUNCATE; DELETE is covered above
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        async with database.begin() as conn:
            await conn.execute(sa.text("TRUNCATE audit_log"))


async def test_blob_is_content_addressed_and_written_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"\x89PNG fake document bytes" * 100
    ref = await store.put(data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    path = store.path_for(ref.sha256)
    assert path.read_bytes() == data
    assert path.parent.parent.name == ref.sha256[:2]
    again = await store.put(data)
    assert again == ref
    assert not list(store.tmp.iterdir())
    with pytest.raises(ValueError, match="SHA-256"):
        store.path_for("../../etc/passwd")


class InjectedFailure(RuntimeError):
    pass


async def test_failure_between_blob_write_and_commit_leaves_no_orphan(
    database: Database, tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "blobs")
    kept = await store.put(b"accepted into a case")
    async with database.begin() as conn:
        await register_blob(conn, kept, "image/png")

    lost = b"written, then the transaction failed"
    with pytest.raises(InjectedFailure):
        async with database.begin() as conn:
            ref = await store.put(lost)
            await register_blob(conn, ref, "image/png")
            raise InjectedFailure("crash before commit")
    orphan = store.path_for(hashlib.sha256(lost).hexdigest())
    assert orphan.exists()  # the file came first, as designed

    removed = await sweep_orphans(database, store, grace_s=0)
    assert removed == [hashlib.sha256(lost).hexdigest()]
    assert not orphan.exists()
    assert store.read(kept.sha256) == b"accepted into a case"
    async with database.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(tables.blobs))
    assert count == 1


async def test_sweep_spares_young_files_and_clears_stale_temp_files(
    database: Database, tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "blobs")
    young = await store.put(b"another node is about to commit me")
    store.tmp.mkdir(parents=True, exist_ok=True)
    stale = store.tmp / "half-written"
    stale.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))

    removed = await sweep_orphans(database, store, grace_s=3600)
    assert removed == []
    assert store.exists(young.sha256)
    assert not stale.exists()


def test_naive_datetimes_are_refused() -> None:
    from server.storage.types import UTCDateTime

    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), sa.create_engine("sqlite://").dialect)
    aware = UTCDateTime().process_bind_param(datetime(2026, 1, 1, tzinfo=UTC),
                                             sa.create_engine("sqlite://").dialect)
    assert aware is not None and aware.tzinfo is None
