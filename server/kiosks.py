"""Kiosk devices: one-time provisioning codes and per-device secrets.

An operator runs ``xiaowu kiosk provision HUT_ID`` and opens the printed URL on the
booth; the page trades the code for a device id and secret, keeps them in the browser,
and presents ``kd_<id>.<secret>`` on every request and socket connection. Only hashes
are stored: both codes and secrets carry ≥ 60 bits of randomness, so SHA-256 suffices.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server import audit
from server.errors import NotAuthenticated
from server.principals import Principal
from server.storage import tables
from server.storage.types import utcnow

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TOKEN_PREFIX = "kd_"  # noqa: S105  (a prefix, not a secret)


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


async def create_code(conn: AsyncConnection, hut_id: str, *, ttl: timedelta) -> str:
    """A 12-character code (60 bits), shown as ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    now = utcnow()
    await conn.execute(
        sa.insert(tables.provisioning_codes).values(
            code_hash=_sha(raw), hut_id=hut_id, created_at=now, expires_at=now + ttl
        )
    )
    await audit.record(conn, actor="system:cli", role="admin", action="kiosk.provision_code",
                       object_type="hut", object_id=hut_id, outcome="success")
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


async def redeem_code(conn: AsyncConnection, code: str, *, ip: str | None) -> tuple[str, str]:
    """Trade a one-time code for ``(hut_id, device_token)``."""
    p = tables.provisioning_codes
    code_hash = _sha(normalise_code(code))
    now = utcnow()
    row = (await conn.execute(sa.select(p).where(p.c.code_hash == code_hash))).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise NotAuthenticated("开通码无效或已使用", "provisioning code invalid, used or expired",
                               code="provision_code_invalid")
    device_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    claimed = await conn.execute(
        sa.update(p).where(p.c.code_hash == code_hash, p.c.used_at.is_(None))
        .values(used_at=now, device_id=device_id)
    )
    if claimed.rowcount != 1:  # a concurrent redeem won
        raise NotAuthenticated("开通码无效或已使用", "provisioning code already used",
                               code="provision_code_invalid")
    await conn.execute(
        sa.insert(tables.kiosk_devices).values(
            id=device_id, hut_id=row.hut_id, secret_hash=_sha(secret), provisioned_at=now
        )
    )
    await audit.record(conn, actor=f"kiosk:{device_id}", role="kiosk", action="kiosk.provision",
                       object_type="hut", object_id=row.hut_id, outcome="success", ip=ip)
    return row.hut_id, f"{TOKEN_PREFIX}{device_id}.{secret}"


async def authenticate(conn: AsyncConnection, token: str) -> Principal:
    refused = NotAuthenticated("设备凭证无效", "kiosk device credential invalid",
                               code="device_invalid")
    if not token.startswith(TOKEN_PREFIX) or "." not in token:
        raise refused
    device_id, _, secret = token[len(TOKEN_PREFIX):].partition(".")
    d = tables.kiosk_devices
    row = (await conn.execute(sa.select(d).where(d.c.id == device_id))).one_or_none()
    if row is None or not hmac.compare_digest(row.secret_hash, _sha(secret)):
        raise refused
    if row.revoked_at is not None:
        raise NotAuthenticated("设备已停用", "kiosk device revoked", code="device_revoked")
    return Principal(role="kiosk", subject=f"kiosk:{device_id}", hut_id=row.hut_id,
                     device_id=device_id)


async def revoke(conn: AsyncConnection, device_id: str) -> bool:
    d = tables.kiosk_devices
    result = await conn.execute(
        sa.update(d).where(d.c.id == device_id, d.c.revoked_at.is_(None)).values(
            revoked_at=utcnow())
    )
    return bool(result.rowcount)
