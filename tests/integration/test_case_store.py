"""Cases in SQLite and PostgreSQL: numbers without races or gaps, one case per ticket,
documents tied to their blobs and slots."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import sqlalchemy as sa

from server import case_store
from server.case_openings import Opening, open_case, sessions_ended_in
from server.case_records import CaseRecord
from server.cases import number_scope
from server.catalogue_loader import load_kiosk_config
from server.settings import DEFAULT_CONFIG_DIR
from server.storage import tables
from server.storage.blobs import BlobRef
from server.storage.database import Database
from server.storage.types import utcnow

CONFIG = load_kiosk_config(DEFAULT_CONFIG_DIR)
TEACHER = CONFIG.matter("EDU-TQ-CONFIRM")


async def open_for(db: Database, ticket: str, session: str = "s_1", clerk: str = "wangli",
                   ) -> tuple[CaseRecord, bool]:
    return await open_case(db, Opening(
        ticket_id=ticket, session_id=session, matter=TEACHER, channel="kiosk",
        hut_id="dy-hall-01", owner="kiosk:kd1", clerk=clerk, prefix="DY"))


async def test_concurrent_openings_get_distinct_consecutive_numbers(database: Database) -> None:
    opened = await asyncio.gather(*(open_for(database, f"t_{i}", f"s_{i}") for i in range(20)))
    scope = number_scope("DY", utcnow())
    numbers = sorted(case.number for case, created in opened if created)
    assert numbers == [f"{scope}-{n:06d}" for n in range(1, 21)]


async def test_one_case_per_ticket_even_when_openers_race(database: Database) -> None:
    opened = await asyncio.gather(*(open_for(database, "t_same") for _ in range(8)))
    assert sum(created for _, created in opened) == 1
    assert len({case.id for case, _ in opened}) == 1
    async with database.connect() as conn:
        last = await conn.scalar(sa.select(tables.case_counters.c.last))
        count = await conn.scalar(sa.select(sa.func.count()).select_from(tables.cases))
    assert (last, count) == (1, 1)  # the losers' numbers were rolled back: no gap


async def test_a_requeued_ticket_keeps_its_case_under_the_next_clerk(database: Database) -> None:
    first, _ = await open_for(database, "t_1", "s_1", "wangli")
    async with database.begin() as conn:
        await sessions_ended_in(conn, [("s_1", utcnow())])
    again, created = await open_for(database, "t_1", "s_2", "zhaoqiang")
    assert not created
    assert (again.id, again.number) == (first.id, first.number)
    assert (again.session_id, again.clerk, again.session_ended_at) == ("s_2", "zhaoqiang", None)


async def test_the_checklist_is_copied_from_the_matter(database: Database) -> None:
    case, _ = await open_for(database, "t_1")
    async with database.connect() as conn:
        slots = await case_store.load_checklist(conn, case.id)
    assert [s.spec.key for s in slots] == [str(m.kind) for m in TEACHER.materials]
    assert all(s.state == "empty" for s in slots)
    assert str(case.status) == "draft"


async def test_a_document_needs_its_blobs_and_a_real_slot(database: Database) -> None:
    case, _ = await open_for(database, "t_1")
    refs = [BlobRef(hashlib.sha256(b).hexdigest(), len(b)) for b in (b"orig", b"proc")]
    blobs = [(refs[0], "image/jpeg", 40, 30), (refs[1], "image/jpeg", 20, 10)]
    async with database.begin() as conn:
        document = await case_store.add_document(
            conn, case=case, slot="diploma", path="upload", actor="kiosk:kd1", blobs=blobs,
            quality={"verdict": "ok"}, recording_offset_s=None, idempotency=("k1", "f" * 64))
    assert document.original.sha256 == refs[0].sha256
    assert (document.session_id, document.clerk) == ("s_1", "wangli")
    async with database.connect() as conn:
        assert await case_store.upload_key(conn, case.id, "k1") == ("f" * 64, document.id)
        slots = {s.spec.key: s.state for s in await case_store.load_checklist(conn, case.id)}
    assert slots["diploma"] == "filled"

    with pytest.raises(sa.exc.IntegrityError):  # the same key twice
        async with database.begin() as conn:
            await case_store.add_document(
                conn, case=case, slot="diploma", path="upload", actor="kiosk:kd1",
                blobs=blobs, quality={}, recording_offset_s=None, idempotency=("k1", "0" * 64))
    with pytest.raises(sa.exc.IntegrityError):  # a slot the case does not have
        async with database.begin() as conn:
            await case_store.add_document(
                conn, case=case, slot="no_such_slot", path="upload", actor="kiosk:kd1",
                blobs=blobs, quality={}, recording_offset_s=None, idempotency=None)
    async with database.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(tables.case_documents))
    assert count == 1
