"""The append-only audit trail: who did what to which object, and how it ended.

Rows are only ever inserted; triggers on both databases refuse UPDATE and DELETE, so a
compromised application account still cannot rewrite history through SQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage import tables
from server.storage.types import utcnow


async def record(
    conn: AsyncConnection,
    *,
    actor: str,
    role: str,
    action: str,
    object_type: str,
    object_id: str | None,
    outcome: str,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one row inside the caller's transaction (it commits with the change)."""
    await conn.execute(
        sa.insert(tables.audit_log).values(
            at=utcnow(),
            actor=actor[:128],
            role=role,
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            ip=ip,
            detail=detail,
        )
    )
