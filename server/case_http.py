"""What every case route does first: who is calling, which case, may they, and the audit
line. Refusals on an existing case are audited too (``outcome: denied``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from server import app_keys, audit, case_store
from server.case_access import Need, Standing, authorize, case_not_found
from server.case_records import CaseRecord
from server.errors import XiaowuError
from server.http_support import client_ip, require
from server.principals import Principal
from server.storage.types import utcnow

CASE_ROLES = frozenset({"clerk", "supervisor", "admin", "kiosk", "citizen"})


@dataclass(frozen=True)
class CaseContext:
    principal: Principal
    case: CaseRecord
    standing: Standing


async def owner_ticket(app: web.Application, owner: str) -> str | None:
    """The ticket ``owner`` holds in the queue now (the queue's state store is the truth
    about live tickets; the database learns of them write-behind)."""
    record = await app[app_keys.QUEUE].store.ticket_of(owner)
    return None if record is None else record.ticket.id


async def check(request: web.Request, principal: Principal, case: CaseRecord,
                need: Need) -> CaseContext:
    ticket = (await owner_ticket(request.app, case.owner)
              if principal.subject == case.owner else None)
    settings = request.app[app_keys.SETTINGS]
    try:
        standing = authorize(principal, case, need, owner_ticket=ticket, now=utcnow(),
                             window_s=settings.case_citizen_window_s)
    except XiaowuError as exc:
        async with request.app[app_keys.DB].begin() as conn:
            await record(conn, request, principal, f"case.{need}", case, outcome="denied",
                         detail={"code": exc.code})
        raise
    return CaseContext(principal, case, standing)


async def load_case(request: web.Request, need: Need) -> CaseContext:
    principal = await require(request, CASE_ROLES)
    async with request.app[app_keys.DB].connect() as conn:
        case = await case_store.get_case(conn, request.match_info["case_id"])
    if case is None:
        raise case_not_found()
    return await check(request, principal, case, need)


async def record(conn: AsyncConnection, request: web.Request, principal: Principal,
                 action: str, case: CaseRecord, *, outcome: str = "success",
                 detail: dict[str, Any] | None = None) -> None:
    """An audit line for ``case`` (by number; never its full identity number)."""
    await audit.record(conn, actor=principal.subject, role=principal.role, action=action,
                       object_type="case", object_id=case.number, outcome=outcome,
                       ip=client_ip(request), detail=detail)


async def locked(conn: AsyncConnection, case: CaseRecord) -> CaseRecord:
    """The case re-read under its row lock inside the caller's transaction."""
    current = await case_store.lock_case(conn, case.id)
    if current is None:
        raise case_not_found()
    return current


async def tell(request: web.Request, case: CaseRecord, event: str,
               data: dict[str, Any]) -> None:
    await request.app[app_keys.CASE_EVENTS].tell(case, event, data)
