"""Cases in the database: read, change, attach documents. SQLAlchemy Core, async.

Functions take a connection inside the caller's transaction, so a change and its audit
line commit together. Opening a case (numbers, one case per ticket) is
``server.case_openings``.
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
    SlotSpec,
    SlotState,
    checklist,
)
from server.storage import tables
from server.storage.blobs import BlobRef, register_blob
from server.storage.types import utcnow

C, S, D, K = tables.cases, tables.case_slots, tables.case_documents, tables.case_upload_keys


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _department_query(clerk: str) -> sa.Select[tuple[Any]]:
    return sa.select(tables.clerks.c.department).where(tables.clerks.c.username == clerk)


async def follow_session(conn: AsyncConnection, case: CaseRecord, session_id: str,
                         clerk: str) -> CaseRecord:
    """Move a case whose ticket came back from the queue to its new session and clerk."""
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


async def case_of_ticket(conn: AsyncConnection, ticket_id: str) -> CaseRecord | None:
    return await _case_where(conn, C.c.ticket_id == ticket_id)


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
