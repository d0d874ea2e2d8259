"""Opening cases: one at a time (a page asking for its case) or many in one transaction
with a fixed number of statements (the queue's accepts, through ``case_writer``).

Each statement is a round trip through the database driver's thread that waits for a
turn of a busy event loop: opened one by one at 100 accepts/s, cases fell seconds
behind. A batch costs six statements whatever its size: the tickets' existing cases,
the serving clerks' departments, one counter increment per number scope, and one
multi-row insert each for the cases (with ``RETURNING``), their audit lines and their
checklist slots. A single opening is a batch of one.

Two things need care on both databases:

* **Case numbers** come from ``case_counters``, one row per prefix and year, incremented
  by an upsert with ``RETURNING`` in the transaction that inserts the cases: PostgreSQL
  holds the row lock until commit, SQLite its single writer lock, so two openings never
  get one number and a rolled-back opening gives its numbers back (no gaps). Numbers are
  consecutive in request order.
* **One case per ticket**: ``ticket_id`` is unique. Two openers racing (the accept hook
  and a page asking for the case, or two nodes) both try; the loser's insert fails and
  ``open_case`` reads the winner's case in a new transaction. A request whose ticket
  already has a case (a ticket back from the queue, accepted again), or comes up twice
  in a batch, follows that case to its new session, after the inserts, in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server import case_store
from server.case_records import CaseRecord
from server.cases import CaseStatus, format_number, number_scope, slots_for
from server.catalogue_records import Matter
from server.storage import tables
from server.storage.database import Database, upsert_insert
from server.storage.types import utcnow

C = tables.cases


@dataclass(frozen=True)
class Opening:
    ticket_id: str
    session_id: str
    matter: Matter
    channel: str
    hut_id: str | None
    owner: str
    clerk: str
    prefix: str


async def open_case(db: Database, opening: Opening) -> tuple[CaseRecord, bool]:
    """The ticket's case, opened if it has none; ``True`` when this call opened it."""
    for attempt in range(2):
        try:
            async with db.begin() as conn:
                (result,) = await open_cases_in(conn, [opening])
                return result
        except sa.exc.IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def open_cases_in(conn: AsyncConnection,
                        openings: Sequence[Opening]) -> list[tuple[CaseRecord, bool]]:
    """Each opening's case and whether it was opened now, in request order."""
    if not openings:
        return []
    existing = await _tickets_with_cases(conn, {o.ticket_id for o in openings})
    fresh: list[int] = []
    later: list[int] = []
    seen: set[str] = set()
    for index, opening in enumerate(openings):
        new = opening.ticket_id not in existing and opening.ticket_id not in seen
        (fresh if new else later).append(index)
        seen.add(opening.ticket_id)
    results: list[tuple[CaseRecord, bool] | None] = [None] * len(openings)
    if fresh:
        opened = await _insert_cases(conn, [openings[i] for i in fresh])
        for index, case in zip(fresh, opened, strict=True):
            results[index] = (case, True)
    for index in later:
        o = openings[index]
        found = await case_store.case_of_ticket(conn, o.ticket_id)
        assert found is not None  # it was there, or an earlier request of the batch made it
        results[index] = (await case_store.follow_session(conn, found, o.session_id, o.clerk),
                          False)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


async def sessions_ended_in(conn: AsyncConnection, ends: Sequence[tuple[str, datetime]]) -> None:
    """Stamp the cases of these sessions as no longer in a call (one executemany)."""
    if ends:
        await conn.execute(
            sa.update(C).where(C.c.session_id == sa.bindparam("sid"))
            .values(session_ended_at=sa.bindparam("ended")),
            [{"sid": sid, "ended": at} for sid, at in ends])


async def _tickets_with_cases(conn: AsyncConnection, tickets: set[str]) -> set[str]:
    found = await conn.scalars(sa.select(C.c.ticket_id).where(C.c.ticket_id.in_(tickets)))
    return set(found)


async def _numbers(conn: AsyncConnection, openings: Sequence[Opening],
                   now: datetime) -> list[str]:
    """Consecutive numbers per scope, in request order: one increment per scope."""
    scopes = [number_scope(o.prefix, now) for o in openings]
    last: dict[str, int] = {}
    counters = tables.case_counters
    for scope in dict.fromkeys(scopes):
        count = scopes.count(scope)
        result = await conn.execute(
            upsert_insert(conn, counters).values(scope=scope, last=count)
            .on_conflict_do_update(index_elements=[counters.c.scope],
                                   set_={"last": counters.c.last + count})
            .returning(counters.c.last))
        last[scope] = int(result.scalar_one()) - count
    numbers = []
    for scope in scopes:
        last[scope] += 1
        numbers.append(format_number(scope, last[scope]))
    return numbers


async def _insert_cases(conn: AsyncConnection,
                        openings: Sequence[Opening]) -> list[CaseRecord]:
    now = utcnow()
    clerks = {o.clerk for o in openings}
    departments = dict((await conn.execute(
        sa.select(tables.clerks.c.username, tables.clerks.c.department)
        .where(tables.clerks.c.username.in_(clerks)))).all())
    numbers = await _numbers(conn, openings, now)
    rows: list[dict[str, Any]] = [{
        "id": case_store.new_id("c"), "number": number, "ticket_id": o.ticket_id,
        "session_id": o.session_id, "matter": o.matter.code,
        "department": departments.get(o.clerk), "channel": o.channel, "hut_id": o.hut_id,
        "owner": o.owner, "clerk": o.clerk, "status": str(CaseStatus.DRAFT),
        "created_at": now, "updated_at": now,
    } for o, number in zip(openings, numbers, strict=True)]
    inserted = await conn.execute(sa.insert(C).returning(*C.c, sort_by_parameter_order=True),
                                  rows)
    cases = [CaseRecord.from_row(row) for row in inserted.mappings().all()]
    await conn.execute(sa.insert(tables.audit_log), [{
        "at": now, "actor": f"clerk:{o.clerk}"[:128], "role": "clerk", "action": "case.open",
        "object_type": "case", "object_id": case.number, "outcome": "success", "ip": None,
        "detail": {"session_id": o.session_id, "ticket_id": o.ticket_id,
                   "matter": o.matter.code},
    } for o, case in zip(openings, cases, strict=True)])
    slots = [{"case_id": case.id, "key": s.key, "position": s.position, "kind": s.kind,
              "required": s.required, "name_zh": s.name_zh, "name_en": s.name_en,
              "aspect_ratio": s.aspect_ratio}
             for o, case in zip(openings, cases, strict=True) for s in slots_for(o.matter)]
    if slots:
        await conn.execute(sa.insert(tables.case_slots), slots)
    return cases
