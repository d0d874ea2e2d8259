"""Clerk accounts: creation, password changes, and login with lockout.

Every login attempt, good or bad, is written to the audit log in the same transaction
as the counter it changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server import audit
from server.errors import BadRequest, Conflict, NotAuthenticated, NotFound
from server.passwords import (
    check_strength,
    hash_password_off_loop,
    needs_rehash,
    verify_password_off_loop,
)
from server.principals import Principal
from server.storage import tables
from server.storage.database import Database
from server.storage.types import utcnow

STAFF_ROLE_NAMES = ("clerk", "supervisor", "admin")
_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{2,63}$")


@dataclass(frozen=True)
class ClerkSpec:
    username: str
    display_name: str
    department: str
    role: str = "clerk"
    skills: Sequence[str] = ()
    jurisdictions: Sequence[str] = ()
    languages: Sequence[str] = ("zh",)

    def validate(self) -> None:
        if not _USERNAME.match(self.username):
            raise BadRequest(
                "用户名须为 3–64 位小写字母、数字或 ._-，并以字母开头",
                "username: 3-64 lowercase letters, digits or ._-, starting with a letter",
                code="invalid_username",
            )
        if self.role not in STAFF_ROLE_NAMES:
            raise BadRequest("未知角色", f"role must be one of {STAFF_ROLE_NAMES}",
                             code="invalid_role")


class AccountLocked(NotAuthenticated):
    code = "account_locked"


def principal_from_row(row: Any, **extra: Any) -> Principal:
    return Principal(
        role=row.role,
        subject=f"clerk:{row.username}",
        clerk_id=row.id,
        display_name=row.display_name,
        department=row.department,
        skills=tuple(row.skills),
        jurisdictions=tuple(row.jurisdictions),
        languages=tuple(row.languages),
        must_change_password=bool(row.must_change_password),
        **extra,
    )


async def create_clerk(
    conn: AsyncConnection, spec: ClerkSpec, password: str, *, must_change: bool
) -> int:
    spec.validate()
    exists = await conn.scalar(
        sa.select(tables.clerks.c.id).where(tables.clerks.c.username == spec.username)
    )
    if exists is not None:
        raise Conflict("用户名已存在", f"username {spec.username!r} exists",
                       code="username_taken")
    now = utcnow()
    result = await conn.execute(
        sa.insert(tables.clerks)
        .values(
            username=spec.username,
            display_name=spec.display_name,
            password_hash=await hash_password_off_loop(password),
            role=spec.role,
            department=spec.department,
            skills=list(spec.skills),
            jurisdictions=list(spec.jurisdictions),
            languages=list(spec.languages),
            must_change_password=must_change,
            created_at=now,
            password_changed_at=now,
        )
        .returning(tables.clerks.c.id)
    )
    return int(result.scalar_one())


async def set_password(
    conn: AsyncConnection, username: str, password: str, *, must_change: bool,
    check: bool = True, keep_session: str | None = None,
) -> None:
    """Set a password and end the clerk's other sessions (all but ``keep_session``)."""
    if check and (reason := check_strength(password)):
        raise BadRequest(f"密码强度不足：{reason}", f"password too weak: {reason}",
                         code="weak_password")
    result = await conn.execute(
        sa.update(tables.clerks)
        .where(tables.clerks.c.username == username)
        .values(
            password_hash=await hash_password_off_loop(password),
            must_change_password=must_change,
            failed_logins=0,
            locked_until=None,
            password_changed_at=utcnow(),
        )
    )
    if result.rowcount == 0:
        raise NotFound("没有该工作人员", f"no clerk named {username!r}", code="clerk_not_found")
    s = tables.web_sessions
    clerk_id = sa.select(tables.clerks.c.id).where(tables.clerks.c.username == username)
    revoke = sa.update(s).where(s.c.clerk_id == clerk_id.scalar_subquery(),
                                s.c.revoked_at.is_(None))
    if keep_session is not None:
        revoke = revoke.where(s.c.id_hash != keep_session)
    await conn.execute(revoke.values(revoked_at=utcnow()))


async def authenticate(
    db: Database,
    username: str,
    password: str,
    *,
    threshold: int,
    lockout: timedelta,
    ip: str | None,
) -> Any:
    """Check a password; return the clerk row or raise ``invalid_credentials``/``account_locked``.

    An unknown username costs the same argon2 verify and gets the same answer as a wrong
    password, so the endpoint does not reveal which accounts exist. The verify runs off the
    event loop and outside any transaction: the row is read in one short transaction and
    the outcome written in another that starts with its write (on SQLite a transaction
    that reads, then writes, can fail at once with "database is locked" when another
    writer got in between; one that writes first waits its turn).
    """
    now = utcnow()
    async with db.begin() as conn:
        row = (
            await conn.execute(
                sa.select(tables.clerks).where(tables.clerks.c.username == username)
            )
        ).one_or_none()
    if row is not None and row.locked_until is not None and row.locked_until > now:
        async with db.begin() as conn:
            await audit.record(conn, actor=f"clerk:{username}", role=row.role, action="login",
                               object_type="clerk", object_id=str(row.id), outcome="locked",
                               ip=ip)
        raise _locked(row.locked_until)
    verified = await verify_password_off_loop(
        row.password_hash if row is not None else None, password)
    if not (verified and row is not None and not row.disabled):
        async with db.begin() as conn:
            locked_until = await _record_failure(conn, row, username, now, threshold,
                                                 lockout, ip)
        raise _locked(locked_until) if locked_until else NotAuthenticated(
            "用户名或密码错误", "wrong username or password", code="invalid_credentials"
        )
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
    if needs_rehash(row.password_hash):
        values["password_hash"] = await hash_password_off_loop(password)
    clerks = tables.clerks
    async with db.begin() as conn:
        # Not if a concurrent wrong password locked the account meanwhile.
        result = await conn.execute(
            sa.update(clerks).where(clerks.c.id == row.id, sa.or_(
                clerks.c.locked_until.is_(None), clerks.c.locked_until <= now))
            .values(**values))
        error: Exception | None = None
        if result.rowcount == 0:  # locked meanwhile, or the account is gone
            locked = await conn.scalar(sa.select(clerks.c.locked_until)
                                       .where(clerks.c.id == row.id))
            error = _locked(locked) if locked is not None else NotAuthenticated(
                "用户名或密码错误", "wrong username or password", code="invalid_credentials")
        else:
            await audit.record(conn, actor=f"clerk:{username}", role=row.role, action="login",
                               object_type="clerk", object_id=str(row.id),
                               outcome="success", ip=ip)
    if error is not None:
        raise error
    return row


async def _record_failure(
    conn: AsyncConnection, row: Any, username: str, now: datetime, threshold: int,
    lockout: timedelta, ip: str | None,
) -> datetime | None:
    """Count a failure (atomically: concurrent wrong passwords each count); returns the
    lock expiry when this failure locked the account."""
    outcome = "failure"
    locked_until: datetime | None = None
    if row is not None:
        clerks = tables.clerks
        failures = int((await conn.execute(
            sa.update(clerks).where(clerks.c.id == row.id)
            .values(failed_logins=clerks.c.failed_logins + 1)
            .returning(clerks.c.failed_logins))).scalar_one())
        if failures >= threshold:
            locked_until = now + lockout
            await conn.execute(sa.update(clerks).where(clerks.c.id == row.id)
                               .values(failed_logins=0, locked_until=locked_until))
            outcome = "failure_locked"
    await audit.record(
        conn, actor=f"clerk:{username}", role=row.role if row is not None else "unknown",
        action="login", object_type="clerk",
        object_id=str(row.id) if row is not None else None, outcome=outcome, ip=ip,
    )
    return locked_until


def _locked(until: datetime) -> AccountLocked:
    return AccountLocked(
        "登录失败次数过多，账户已暂时锁定，请稍后再试",
        "too many failed logins: the account is locked for a while",
        detail={"locked_until": until.isoformat()},
    )


async def get_clerk(conn: AsyncConnection, clerk_id: int) -> Any:
    return (
        await conn.execute(sa.select(tables.clerks).where(tables.clerks.c.id == clerk_id))
    ).one_or_none()
