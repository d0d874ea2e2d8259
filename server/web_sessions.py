"""Server-side login sessions behind an HttpOnly, SameSite=Strict cookie.

The cookie carries a random token; the table keeps only its SHA-256, so a database
leak does not hand out live sessions. Each session has its own CSRF token, which the
console sends back in the ``X-CSRF-Token`` header on every state-changing request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage import tables
from server.storage.types import utcnow

COOKIE_NAME = "xw_session"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_session(
    conn: AsyncConnection, clerk_id: int, *, ttl: timedelta, ip: str | None,
    user_agent: str | None,
) -> tuple[str, str]:
    """Create a session; returns ``(cookie_token, csrf_token)``."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    await conn.execute(
        sa.insert(tables.web_sessions).values(
            id_hash=token_hash(token),
            clerk_id=clerk_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + ttl,
            ip=ip,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    return token, csrf


async def lookup(conn: AsyncConnection, token: str) -> Any:
    """The live session joined with its clerk, or None if unknown, expired or revoked."""
    s, c = tables.web_sessions, tables.clerks
    row = (
        await conn.execute(
            sa.select(s.c.id_hash, s.c.csrf_token, s.c.expires_at, s.c.revoked_at, c)
            .join(c, c.c.id == s.c.clerk_id)
            .where(s.c.id_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow() or row.disabled:
        return None
    return row


async def revoke(conn: AsyncConnection, session_hash: str) -> None:
    await conn.execute(
        sa.update(tables.web_sessions)
        .where(tables.web_sessions.c.id_hash == session_hash)
        .values(revoked_at=utcnow())
    )


async def revoke_all_for(conn: AsyncConnection, clerk_id: int) -> None:
    await conn.execute(
        sa.update(tables.web_sessions)
        .where(tables.web_sessions.c.clerk_id == clerk_id,
               tables.web_sessions.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
