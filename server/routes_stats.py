"""Today's figures: a clerk's own (console) and everyone's (supervisor dashboard)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from aiohttp import web

from server import app_keys
from server.day_figures import SessionRow, clerk_figures, dashboard_figures, day_end, day_start
from server.http_support import require
from server.storage import tables

routes = web.RouteTableDef()
STAFF = ("clerk", "supervisor", "admin")


async def _sessions(request: web.Request, now: datetime,
                    clerk: str | None = None) -> list[SessionRow]:
    t = tables.service_sessions
    query = sa.select(t.c.clerk, t.c.accepted_at, t.c.outcome, t.c.wait_s, t.c.handle_s).where(
        t.c.accepted_at >= day_start(now), t.c.accepted_at < day_end(now))
    if clerk is not None:
        query = query.where(t.c.clerk == clerk)
    async with request.app[app_keys.DB].connect() as conn:
        rows = (await conn.execute(query)).all()
    return [SessionRow(r.clerk, r.accepted_at, r.outcome, r.wait_s, r.handle_s) for r in rows]


async def _ratings(request: web.Request, now: datetime, clerk: str | None = None) -> list[int]:
    """Ratings given today (by when the citizen rated)."""
    c = tables.cases
    query = sa.select(c.c.rating).where(c.c.rating.is_not(None), c.c.rated_at >= day_start(now),
                                        c.c.rated_at < day_end(now))
    if clerk is not None:
        query = query.where(c.c.clerk == clerk)
    async with request.app[app_keys.DB].connect() as conn:
        return [int(r) for r in (await conn.execute(query)).scalars()]


@routes.get("/api/stats/me")
async def my_day(request: web.Request) -> web.Response:
    principal = await require(request, STAFF)
    now = datetime.now(UTC)
    clerk = principal.subject.removeprefix("clerk:")
    sessions = await _sessions(request, now, clerk)
    return web.json_response(clerk_figures(sessions, await _ratings(request, now, clerk)))


@routes.get("/api/stats/today")
async def everyones_day(request: web.Request) -> web.Response:
    await require(request, ("supervisor", "admin"))
    now = datetime.now(UTC)
    return web.json_response(dashboard_figures(await _sessions(request, now),
                                               await _ratings(request, now), now))
