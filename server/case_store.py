"""Cases in the database: open, read, change, attach documents. SQLAlchemy Core, async.

Functions take a connection inside the caller's transaction, so a change and its audit
line commit together. Two things need care on both databases:

* **Case numbers** come from ``case_counters``, one row per prefix and year. The row is
  created if missing (insert-or-ignore) and incremented with ``UPDATE ... RETURNING`` in
  the transaction that inserts the case: PostgreSQL holds the row lock until commit,
  SQLite its single writer lock, so two openings never get one number and a rolled-back
  opening gives its number back (no gaps).
* **One case per ticket**: ``ticket_id`` is unique. Two openers racing (the accept hook
  and a page asking for the case) both try; the loser's insert fails and it reads the
  winner's case.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server import audit
from server.case_records import CaseRecord, DocumentRecord
from server.cases import (
    CaseStatus,
    SlotSpec,
    SlotState,
    checklist,
    format_number,
    number_scope,
    slots_for,
)
from server.catalogue_records import Matter
from server.storage import tables
from server.storage.blobs import BlobRef, register_blob
from server.storage.database import Database, upsert_insert
from server.storage.types import utcnow

C, S, D, K = tables.cases, tables.case_slots, tables.case_documents, tables.case_upload_keys


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


async def next_number(conn: AsyncConnection, scope: str) -> str:
    """The scope's next number, in one statement: insert 1, or add 1 to the row there."""
    counters = tables.case_counters
    insert = upsert_insert(conn, counters).values(scope=scope, last=1)
    result = await conn.execute(
        insert.on_conflict_do_update(index_elements=[counters.c.scope],
                                     set_={"last": counters.c.last + 1})
        .returning(counters.c.last))
    return format_number(scope, int(result.scalar_one()))


async def open_case(db: Database, *, ticket_id: str, session_id: str, matter: Matter,
                    channel: str, hut_id: str | None, owner: str, clerk: str,
                    prefix: str) -> tuple[CaseRecord, bool]:
    """The ticket's case, opened if it has none; ``True`` when this call opened it. A case
    whose ticket came back from the queue moves to the new session and clerk."""
    for attempt in range(2):
        try:
            async with db.begin() as conn:
                return await open_case_in(conn, ticket_id=ticket_id, session_id=session_id,
                                          matter=matter, channel=channel, hut_id=hut_id,
                                          owner=owner, clerk=clerk, prefix=prefix)
        except sa.exc.IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def open_case_in(conn: AsyncConnection, *, ticket_id: str, session_id: str,
                       matter: Matter, channel: str, hut_id: str | None, owner: str,
                       clerk: str, prefix: str) -> tuple[CaseRecord, bool]:
    """``open_case`` inside the caller's transaction (``IntegrityError`` when another
    opener of the same ticket won: retry in a new transaction)."""
    existing = await _case_where(conn, C.c.ticket_id == ticket_id)
    if existing is not None:
        return await _follow_session(conn, existing, session_id, clerk), False
    return await _insert_case(conn, ticket_id, session_id, matter, channel, hut_id, owner,
                              clerk, prefix), True


def _department_query(clerk: str) -> sa.Select[tuple[Any]]:
    return sa.select(tables.clerks.c.department).where(tables.clerks.c.username == clerk)


async def _insert_case(conn: AsyncConnection, ticket_id: str, session_id: str, matter: Matter,
                       channel: str, hut_id: str | None, owner: str, clerk: str,
                       prefix: str) -> CaseRecord:
    now = utcnow()
    case_id = new_id("c")
    number = await next_number(conn, number_scope(prefix, now))
    row = (await conn.execute(sa.insert(C).values(
        id=case_id, number=number, ticket_id=ticket_id, session_id=session_id,
        matter=matter.code, department=_department_query(clerk).scalar_subquery(),
        channel=channel, hut_id=hut_id, owner=owner, clerk=clerk,
        status=str(CaseStatus.DRAFT), created_at=now, updated_at=now)
        .returning(*C.c))).mappings().one()
    await audit.record(conn, actor=f"clerk:{clerk}", role="clerk", action="case.open",
                       object_type="case", object_id=number, outcome="success",
                       detail={"session_id": session_id, "ticket_id": ticket_id,
                               "matter": matter.code})
    slots = slots_for(matter)
    if slots:
        await conn.execute(sa.insert(S), [
            {"case_id": case_id, "key": s.key, "position": s.position, "kind": s.kind,
             "required": s.required, "name_zh": s.name_zh, "name_en": s.name_en,
             "aspect_ratio": s.aspect_ratio} for s in slots])
    return CaseRecord.from_row(row)


async def _follow_session(conn: AsyncConnection, case: CaseRecord, session_id: str,
                          clerk: str) -> CaseRecord:
    if case.session_id == session_id:
        return case
    await conn.execute(sa.update(C).where(C.c.id == case.id).values(
        session_id=session_id, clerk=clerk,
        department=_department_query(clerk).scalar_subquery(), session_ended_at=None,
        updated_at=utcnow()))
    await audit.record(conn, actor=f"clerk:{clerk}", role="clerk", action="case.reassign",
                       object_type="case", object_id=case.number, outcome="success",
                       detail={"session_id": session_id, "previous_clerk": case.clerk})
    moved = await _case_where(conn, C.c.id == case.id)
    assert moved is not None
    return moved


async def _case_where(conn: AsyncConnection, condition: Any) -> CaseRecord | None:
    row = (await conn.execute(sa.select(C).where(condition))).mappings().one_or_none()
    return None if row is None else CaseRecord.from_row(row)


async def get_case(conn: AsyncConnection, case_id: str) -> CaseRecord | None:
    return await _case_where(conn, C.c.id == case_id)


async def lock_case(conn: AsyncConnection, case_id: str) -> CaseRecord | None:
    """The case, read after a write to its row: PostgreSQL then holds the row lock and
    SQLite its writer lock until commit, so a status check made now still holds when the
    change commits (a completion and an upload cannot pass each other)."""
    await conn.execute(sa.update(C).where(C.c.id == case_id).values(updated_at=utcnow()))
    return await get_case(conn, case_id)


async def case_of_session(conn: AsyncConnection, session_id: str) -> CaseRecord | None:
    return await _case_where(conn, C.c.session_id == session_id)


async def list_cases(conn: AsyncConnection, *, clerk: str | None = None,
                     department: str | None = None, status: str | None = None,
                     before: datetime | None = None, limit: int = 50) -> list[CaseRecord]:
    """Newest first; exactly one of ``clerk`` and ``department`` scopes the list."""
    if (clerk is None) == (department is None):
        raise ValueError("list_cases needs exactly one of clerk and department")
    query = sa.select(C).order_by(C.c.created_at.desc(), C.c.id.desc()).limit(limit)
    if clerk is not None:
        query = query.where(C.c.clerk == clerk)
    if department is not None:
        query = query.where(C.c.department == department)
    if status is not None:
        query = query.where(C.c.status == status)
    if before is not None:
        query = query.where(C.c.created_at < before)
    rows = (await conn.execute(query)).mappings().all()
    return [CaseRecord.from_row(row) for row in rows]


async def load_checklist(conn: AsyncConnection, case_id: str) -> list[SlotState]:
    rows = (await conn.execute(sa.select(S).where(S.c.case_id == case_id))).mappings().all()
    counted = await conn.execute(sa.select(D.c.slot, sa.func.count())
                                 .where(D.c.case_id == case_id).group_by(D.c.slot))
    counts = {str(slot): int(n) for slot, n in counted}
    specs = [SlotSpec(r["key"], r["position"], r["kind"], r["required"], r["name_zh"],
                      r["name_en"], r["aspect_ratio"]) for r in rows]
    waivers = {r["key"]: r["waived_reason"] for r in rows if r["waived_reason"] is not None}
    return checklist(specs, counts, waivers)


async def load_documents(conn: AsyncConnection, case_id: str) -> list[DocumentRecord]:
    rows = (await conn.execute(sa.select(D).where(D.c.case_id == case_id)
                               .order_by(D.c.captured_at, D.c.id))).mappings().all()
    return [DocumentRecord.from_row(row) for row in rows]


async def get_document(conn: AsyncConnection, case_id: str,
                       document_id: str) -> DocumentRecord | None:
    row = (await conn.execute(sa.select(D).where(D.c.case_id == case_id,
                                                 D.c.id == document_id))).mappings().one_or_none()
    return None if row is None else DocumentRecord.from_row(row)


async def update_case(conn: AsyncConnection, case: CaseRecord,
                      **values: Any) -> CaseRecord:
    """Set columns of the case (``updated_at`` too) and return it as stored now."""
    await conn.execute(sa.update(C).where(C.c.id == case.id)
                       .values(updated_at=utcnow(), **values))
    changed = await get_case(conn, case.id)
    assert changed is not None
    return changed


async def set_waiver(conn: AsyncConnection, case_id: str, key: str, reason: str | None,
                     actor: str) -> None:
    values: dict[str, Any] = ({"waived_reason": None, "waived_by": None, "waived_at": None}
                              if reason is None else
                              {"waived_reason": reason, "waived_by": actor,
                               "waived_at": utcnow()})
    await conn.execute(sa.update(S).where(S.c.case_id == case_id, S.c.key == key)
                       .values(**values))


async def session_ended(conn: AsyncConnection, session_id: str, at: datetime) -> None:
    await conn.execute(sa.update(C).where(C.c.session_id == session_id)
                       .values(session_ended_at=at))


async def upload_key(conn: AsyncConnection, case_id: str, key: str) -> tuple[str, str] | None:
    """``(request_sha256, document_id)`` of an earlier upload with this key."""
    row = (await conn.execute(sa.select(K.c.request_sha256, K.c.document_id)
                              .where(K.c.case_id == case_id, K.c.key == key))).one_or_none()
    return None if row is None else (row.request_sha256, row.document_id)


async def add_document(conn: AsyncConnection, *, case: CaseRecord, slot: str, path: str,
                       actor: str, blobs: Sequence[tuple[BlobRef, str, int, int]],
                       quality: dict[str, Any], recording_offset_s: float | None,
                       idempotency: tuple[str, str] | None) -> DocumentRecord:
    """Register the two blobs (already on disk, fsync'd), insert the document and its
    idempotency key. ``blobs``: original then processed, as (ref, type, width, height)."""
    (original, o_type, o_w, o_h), (processed, p_type, p_w, p_h) = blobs
    for ref, content_type, _, _ in blobs:
        await register_blob(conn, ref, content_type)
    document_id = new_id("d")
    now = utcnow()
    await conn.execute(sa.insert(D).values(
        id=document_id, case_id=case.id, slot=slot, path=path, session_id=case.session_id,
        clerk=case.clerk, actor=actor[:128], captured_at=now,
        recording_offset_s=recording_offset_s,
        original_sha256=original.sha256, original_size=original.size, original_type=o_type,
        original_width=o_w, original_height=o_h,
        processed_sha256=processed.sha256, processed_size=processed.size,
        processed_type=p_type, processed_width=p_w, processed_height=p_h, quality=quality))
    if idempotency is not None:
        key, request_sha256 = idempotency
        await conn.execute(sa.insert(K).values(
            case_id=case.id, key=key, request_sha256=request_sha256,
            document_id=document_id, actor=actor[:128], created_at=now))
    document = await get_document(conn, case.id, document_id)
    assert document is not None
    return document
