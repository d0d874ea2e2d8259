"""Phone number + one-time code sign-in for the mobile page in demo mode."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import BadRequest, NotAuthenticated, TooManyRequests
from server.storage import tables
from server.storage.types import utcnow

PHONE = re.compile(r"^1[3-9]\d{9}$")
RESEND_AFTER = timedelta(seconds=60)


def phone_hash(secret: str, phone: str) -> str:
    """Keyed, so the table of hashes cannot be reversed by enumerating phone numbers."""
    return hmac.new(secret.encode(), phone.encode(), hashlib.sha256).hexdigest()


def _code_hash(p_hash: str, code: str) -> str:
    return hashlib.sha256(f"{p_hash}:{code}".encode()).hexdigest()


def check_phone(phone: str) -> None:
    if not PHONE.match(phone):
        raise BadRequest("请输入 11 位手机号码", "enter an 11-digit mainland mobile number",
                         code="invalid_phone")


async def issue(conn: AsyncConnection, secret: str, phone: str, *, ttl: timedelta) -> str:
    check_phone(phone)
    p_hash = phone_hash(secret, phone)
    now = utcnow()
    o = tables.otp_challenges
    last = await conn.scalar(
        sa.select(sa.func.max(o.c.created_at)).where(o.c.phone_hash == p_hash)
    )
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is not None and now - last < RESEND_AFTER:
        raise TooManyRequests("验证码已发送，请稍后再试", "a code was sent recently; wait a minute",
                              code="otp_too_soon")
    code = f"{secrets.randbelow(10**6):06d}"
    await conn.execute(
        sa.insert(o).values(phone_hash=p_hash, code_hash=_code_hash(p_hash, code),
                            created_at=now, expires_at=now + ttl)
    )
    return code


async def redeem(
    conn: AsyncConnection, secret: str, phone: str, code: str, *, max_attempts: int
) -> str | NotAuthenticated:
    """Check the newest live code; returns the phone hash (the citizen's stable id).

    A wrong code is *returned*, not raised, so the caller commits the attempt counter
    before refusing; raising inside the transaction would roll the count back.
    """
    check_phone(phone)
    p_hash = phone_hash(secret, phone)
    o = tables.otp_challenges
    now = utcnow()
    row = (
        await conn.execute(
            sa.select(o).where(o.c.phone_hash == p_hash, o.c.used_at.is_(None))
            .order_by(o.c.created_at.desc()).limit(1)
        )
    ).one_or_none()
    if row is None or row.expires_at <= now or row.attempts >= max_attempts:
        raise NotAuthenticated("验证码已失效，请重新获取", "code expired; request a new one",
                               code="otp_expired")
    if not hmac.compare_digest(row.code_hash, _code_hash(p_hash, code.strip())):
        await conn.execute(sa.update(o).where(o.c.id == row.id).values(
            attempts=row.attempts + 1))
        return NotAuthenticated("验证码错误", "wrong code", code="otp_wrong")
    await conn.execute(sa.update(o).where(o.c.id == row.id).values(used_at=now))
    return p_hash
