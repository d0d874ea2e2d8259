"""Case routes: list, open for a session, read, edit, waive, change status, rate.

Documents (upload, stream snapshot, images) are in :mod:`server.routes_case_documents`,
the ZIP export in :mod:`server.case_export`. Every read and write is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server import app_keys, audit, case_store
from server.case_access import Need, case_not_found
from server.case_http import CASE_ROLES, CaseContext, check, load_case, locked, record, tell
from server.case_openings import Opening, open_case
from server.case_recordings import case_recordings
from server.case_records import CaseRecord
from server.case_views import case_detail, case_summary
from server.cases import CLOSED_STATUSES, CaseStatus, find_slot, started, transition
from server.errors import BadRequest, Conflict, Forbidden
from server.http_support import client_ip, parse_body, require
from server.identity_numbers import mask, validate
from server.principals import STAFF_ROLES
from server.storage.types import utcnow
from signaling.sessions import SessionState

routes = web.RouteTableDef()
LIVE_SESSION = frozenset({SessionState.ACCEPTED, SessionState.CONNECTING, SessionState.ACTIVE})


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseEdit(_Body):
    applicant_name: str | None = Field(None, min_length=1, max_length=128)
    id_number: str | None = Field(None, min_length=1, max_length=32)
    notes: str | None = Field(None, max_length=4000)
    outcome: str | None = Field(None, max_length=2000)


class Waiver(_Body):
    reason: str = Field(min_length=1, max_length=500)


class StatusChange(_Body):
    status: Literal["in_progress", "completed", "rejected", "withdrawn"]
    outcome: str | None = Field(None, max_length=2000)


class Rating(_Body):
    score: int = Field(ge=1, le=5)
    reason: str | None = Field(None, max_length=500)


async def detail_response(request: web.Request, ctx: CaseContext,
                          case: CaseRecord | None = None, status: int = 200) -> web.Response:
    case = case or ctx.case
    async with request.app[app_keys.DB].connect() as conn:
        slots = await case_store.load_checklist(conn, case.id)
        documents = await case_store.load_documents(conn, case.id)
        recordings = await case_recordings(conn, case, documents)
    view = case_detail(request.app[app_keys.KIOSK_CONFIG], case, slots, documents,
                       ctx.standing, recordings)
    return web.json_response({"case": view}, status=status)


@routes.get("/api/cases")
async def list_cases(request: web.Request) -> web.Response:
    principal = await require(request, STAFF_ROLES)
    query = request.query
    limit = _int(query.get("limit", "50"), "limit", 1, 200)
    status = query.get("status")
    if status is not None and status not in set(CaseStatus):
        raise BadRequest("状态无效", f"unknown status {status!r}", code="invalid_payload",
                         detail={"field": "status"})
    before = _moment(query.get("before"))
    username = principal.subject.removeprefix("clerk:")
    if principal.role == "clerk":
        scope: dict[str, str | None] = {"clerk": username}
    elif principal.role == "supervisor" and principal.department is not None:
        scope = {"department": principal.department}
    else:
        raise Forbidden("无权查看案件", "this role does not handle cases")
    async with request.app[app_keys.DB].begin() as conn:
        found = await case_store.list_cases(conn, status=status, before=before, limit=limit,
                                            **scope)
        await audit.record(conn, actor=principal.subject, role=principal.role,
                           action="case.list", object_type="case", object_id=None,
                           outcome="success", ip=client_ip(request),
                           detail={"count": len(found), **scope})
    config = request.app[app_keys.KIOSK_CONFIG]
    return web.json_response({"cases": [case_summary(config, c) for c in found]})


@routes.get("/api/sessions/{session_id}/case")
async def session_case(request: web.Request) -> web.Response:
    """The case of a session, opened now if the accept hook has not done it yet."""
    principal = await require(request, CASE_ROLES)
    app = request.app
    session_id = request.match_info["session_id"]
    queue = app[app_keys.QUEUE]
    session = await queue.store.get_session(session_id)
    ticket = None if session is None else await queue.store.get_ticket(session.ticket_id)
    username = principal.subject.removeprefix("clerk:")
    participant = session is not None and ticket is not None and (
        (principal.is_staff and session.clerk_id == username)
        or (not principal.is_staff and ticket.owner == principal.subject))
    if participant and session is not None and ticket is not None \
            and session.state in LIVE_SESSION:
        case, _ = await open_case(app[app_keys.DB], Opening(
            ticket_id=ticket.ticket.id, session_id=session_id,
            matter=app[app_keys.KIOSK_CONFIG].matter(ticket.ticket.matter),
            channel=str(ticket.ticket.channel), hut_id=ticket.ticket.hut_id,
            owner=ticket.owner, clerk=session.clerk_id,
            prefix=app[app_keys.SETTINGS].case_number_prefix))
    else:
        async with app[app_keys.DB].connect() as conn:
            found = await case_store.case_of_session(conn, session_id)
        if found is None:
            raise case_not_found()
        case = found
    ctx = await check(request, principal, case, Need.READ)
    async with app[app_keys.DB].begin() as conn:
        await record(conn, request, principal, "case.read", case)
    return await detail_response(request, ctx)


@routes.get("/api/cases/{case_id}")
async def get_case(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.READ)
    async with request.app[app_keys.DB].begin() as conn:
        await record(conn, request, ctx.principal, "case.read", ctx.case)
    return await detail_response(request, ctx)


@routes.patch("/api/cases/{case_id}")
async def edit_case(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.EDIT)
    body = await parse_body(request, CaseEdit)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise BadRequest("没有要修改的内容", "nothing to change", code="invalid_payload",
                         detail={"field": "body"})
    if changes.get("id_number") is not None:
        changes["id_number"] = validate(changes["id_number"])
    async with request.app[app_keys.DB].begin() as conn:
        case = await locked(conn, ctx.case)
        case = await case_store.update_case(conn, case, status=str(started(case.status)),
                                            **changes)
        detail: dict[str, Any] = {"fields": sorted(changes)}
        if "id_number" in changes:
            detail["id_number"] = mask(changes["id_number"])
        await record(conn, request, ctx.principal, "case.update", case, detail=detail)
    await tell(request, case, "case.updated", _updated(case))
    return await detail_response(request, ctx, case)


@routes.put("/api/cases/{case_id}/slots/{slot}/waiver")
async def waive(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.EDIT)
    body = await parse_body(request, Waiver)
    return await _set_waiver(request, ctx, body.reason.strip())


@routes.delete("/api/cases/{case_id}/slots/{slot}/waiver")
async def unwaive(request: web.Request) -> web.Response:
    return await _set_waiver(request, await load_case(request, Need.EDIT), None)


async def _set_waiver(request: web.Request, ctx: CaseContext,
                      reason: str | None) -> web.Response:
    key = request.match_info["slot"]
    if not reason and reason is not None:
        raise BadRequest("请填写免交理由", "a waiver needs a reason", code="reason_required",
                         detail={"field": "reason"})
    async with request.app[app_keys.DB].begin() as conn:
        case = await locked(conn, ctx.case)
        slots = await case_store.load_checklist(conn, case.id)
        find_slot((s.spec for s in slots), key)
        case = await case_store.update_case(conn, case, status=str(started(case.status)))
        await case_store.set_waiver(conn, case.id, key, reason, ctx.principal.subject)
        await record(conn, request, ctx.principal,
                     "case.waive" if reason is not None else "case.unwaive", case,
                     detail={"slot": key, "reason": reason})
    await tell(request, case, "case.updated", _updated(case))
    return await detail_response(request, ctx, case)


@routes.post("/api/cases/{case_id}/status")
async def change_status(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.EDIT)
    body = await parse_body(request, StatusChange)
    requested = CaseStatus(body.status)
    async with request.app[app_keys.DB].begin() as conn:
        case = await locked(conn, ctx.case)
        outcome = body.outcome if body.outcome is not None else case.outcome
        new = transition(case.status, requested,
                         slots=await case_store.load_checklist(conn, case.id), reason=outcome)
        values: dict[str, Any] = {"status": str(new), "outcome": outcome}
        if new in CLOSED_STATUSES:
            values["closed_at"] = utcnow()
        old = case.status
        case = await case_store.update_case(conn, case, **values)
        await record(conn, request, ctx.principal, "case.status", case,
                     detail={"old": str(old), "new": str(new)})
    await tell(request, case, "case.updated", _updated(case))
    return await detail_response(request, ctx, case)


@routes.post("/api/cases/{case_id}/rating")
async def rate(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.RATE)
    body = await parse_body(request, Rating)
    async with request.app[app_keys.DB].begin() as conn:
        case = await locked(conn, ctx.case)
        if case.rating is not None:
            raise Conflict("已经评价过了，谢谢", "this service has already been rated",
                           code="already_rated")
        case = await case_store.update_case(conn, case, rating=body.score,
                                            rating_reason=body.reason, rated_at=utcnow())
        await record(conn, request, ctx.principal, "case.rate", case,
                     detail={"score": body.score})
    await tell(request, case, "case.updated", _updated(case))
    return web.json_response({"rating": body.score}, status=201)


def _updated(case: CaseRecord) -> dict[str, Any]:
    return {"case_id": case.id, "number": case.number, "status": str(case.status),
            "rating": case.rating}


def _int(raw: str, field: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise BadRequest(f"{field} 无效", f"{field} must be {low}..{high}",
                         code="invalid_payload", detail={"field": field})
    return value


def _moment(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequest("时间格式无效", "before must be an ISO 8601 time with its offset",
                         code="invalid_payload", detail={"field": "before"})
    return moment
