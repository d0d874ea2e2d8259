"""Group commit of case openings and session ends, on SQLite and PostgreSQL: requests
that arrive together share a transaction, each gets its own answer, one bad request
fails alone, and nothing asked for is lost when its caller goes away."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from server.case_openings import Opening
from server.case_writer import CaseWriter
from server.cases import number_scope
from server.catalogue_loader import load_kiosk_config
from server.settings import DEFAULT_CONFIG_DIR
from server.storage import tables
from server.storage.database import Database
from server.storage.types import utcnow

TEACHER = load_kiosk_config(DEFAULT_CONFIG_DIR).matter("EDU-TQ-CONFIRM")


def opening(ticket: Any, session: str) -> Opening:
    return Opening(ticket_id=ticket, session_id=session, matter=TEACHER, channel="kiosk",
                   hut_id="dy-hall-01", owner="kiosk:kd1", clerk="wangli", prefix="DY")


async def _cases(db: Database) -> list[tuple[str, str, Any]]:
    c = tables.cases
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(c.c.ticket_id, c.c.number, c.c.session_ended_at)
                                  .order_by(c.c.number))
        return [tuple(r) for r in rows]


async def test_openings_asked_together_share_a_commit_and_get_their_own_numbers(
        database: Database) -> None:
    writer = CaseWriter(database)
    opened = await asyncio.gather(*(writer.open(opening(f"t_{i}", f"s_{i}"))
                                    for i in range(40)))
    scope = number_scope("DY", utcnow())
    assert all(created for _, created in opened)
    assert sorted(case.number for case, _ in opened) == [
        f"{scope}-{n:06d}" for n in range(1, 41)]
    assert [case.ticket_id for case, _ in opened] == [f"t_{i}" for i in range(40)]
    assert writer.commits < 40


async def test_requests_a_moment_apart_wait_for_each_other_and_share_a_commit(
        database: Database) -> None:
    writer = CaseWriter(database, gather_s=1.0)
    first = asyncio.create_task(writer.open(opening("t_a", "s_a")))
    await asyncio.sleep(0.05)  # the first would be committing alone by now without the wait
    second = asyncio.create_task(writer.session_ended("s_a", utcnow()))
    third = asyncio.create_task(writer.open(opening("t_b", "s_b")))
    await asyncio.gather(first, second, third)
    assert writer.commits == 1
    assert [(t, ended is not None) for t, _, ended in await _cases(database)] == [
        ("t_a", True), ("t_b", False)]


async def test_close_writes_at_once_without_waiting_for_others(database: Database) -> None:
    writer = CaseWriter(database, gather_s=60)
    pending = asyncio.create_task(writer.open(opening("t_a", "s_a")))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(writer.close(), 10)  # not the 60 s gathering time
    assert (await pending)[1] is True


async def test_a_bad_request_fails_alone_and_gives_its_number_back(
        database: Database) -> None:
    writer = CaseWriter(database)
    results = await asyncio.gather(
        writer.open(opening("t_a", "s_a")),
        writer.open(opening(None, "s_bad")),  # NOT NULL: refused by the database
        writer.open(opening("t_b", "s_b")),
        return_exceptions=True)
    assert isinstance(results[1], sa.exc.IntegrityError)
    scope = number_scope("DY", utcnow())
    assert [(t, n) for t, n, _ in await _cases(database)] == [
        ("t_a", f"{scope}-000001"), ("t_b", f"{scope}-000002")]


async def test_a_session_end_asked_after_its_opening_is_written_after_it(
        database: Database) -> None:
    writer = CaseWriter(database)
    ended_at = utcnow()
    await asyncio.gather(writer.open(opening("t_1", "s_1")),
                         writer.session_ended("s_1", ended_at))
    ((ticket, _, stamped),) = await _cases(database)
    assert ticket == "t_1" and stamped is not None


async def test_a_request_whose_caller_went_away_is_still_written(database: Database) -> None:
    writer = CaseWriter(database)
    callers = [asyncio.create_task(writer.open(opening(f"t_{i}", f"s_{i}"))) for i in range(5)]
    await asyncio.sleep(0)  # every request is queued
    for caller in callers:
        caller.cancel()
    for caller in callers:
        with pytest.raises(asyncio.CancelledError):
            await caller
    await writer.close()
    assert [t for t, _, _ in await _cases(database)] == [f"t_{i}" for i in range(5)]


async def test_a_batch_writes_audit_lines_and_checklists_like_one_by_one(
        database: Database) -> None:
    writer = CaseWriter(database)
    opened = await asyncio.gather(*(writer.open(opening(f"t_{i}", f"s_{i}")) for i in range(3)))
    async with database.connect() as conn:
        audit = (await conn.execute(
            sa.select(tables.audit_log.c.action, tables.audit_log.c.object_id)
            .order_by(tables.audit_log.c.id))).all()
        slots = (await conn.execute(
            sa.select(tables.case_slots.c.case_id, sa.func.count())
            .group_by(tables.case_slots.c.case_id))).all()
    assert [tuple(a) for a in audit] == [("case.open", case.number) for case, _ in opened]
    assert {case_id: count for case_id, count in slots} == {
        case.id: len(TEACHER.materials) for case, _ in opened}


async def test_a_ticket_twice_in_a_batch_or_back_from_the_queue_follows_its_case(
        database: Database) -> None:
    writer = CaseWriter(database)
    (first, _), = await asyncio.gather(writer.open(opening("t_1", "s_1")))
    # back from the queue (already has a case), and a new ticket accepted twice at once
    again, new, twice = await asyncio.gather(
        writer.open(opening("t_1", "s_2")), writer.open(opening("t_2", "s_3")),
        writer.open(opening("t_2", "s_4")))
    assert again[0].id == first.id and again[0].session_id == "s_2" and not again[1]
    assert new[1] and not twice[1] and twice[0].id == new[0].id
    assert twice[0].session_id == "s_4"
    assert len(await _cases(database)) == 2
