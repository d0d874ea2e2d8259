"""Today's figures over HTTP: a clerk's own, and everyone's for supervisors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient

from server import app_keys
from server.day_figures import day_start
from server.storage import tables
from tests.integration import parties
from tests.integration.helpers import login


async def _sessions(app: web.Application) -> None:
    now = datetime.now(UTC)
    start = day_start(now)  # China-time midnight: the rows are within today, whenever run
    rows = [
        ("s1", "wangli", "completed", start + (now - start) * 0.25, 40.0, 300.0),
        ("s2", "wangli", "failed", start + (now - start) * 0.5, 200.0, 60.0),
        ("s3", "liuyang", "completed", start + (now - start) * 0.75, 700.0, 100.0),
        ("s4", "wangli", "completed", start - timedelta(minutes=1), 10.0, 10.0),  # yesterday
    ]
    async with app[app_keys.DB].begin() as conn:
        await conn.execute(tables.service_sessions.insert(), [
            {"id": sid, "ticket_id": f"t{sid}", "clerk": clerk, "matter": "HPF-DEPOSIT-CERT",
             "state": "ended", "outcome": outcome, "end_reason": "x", "offered_at": at,
             "accepted_at": at, "active_at": at, "ended_at": at, "wait_s": wait,
             "handle_s": handle}
            for sid, clerk, outcome, at, wait, handle in rows])


async def test_a_clerk_sees_their_own_day_and_a_supervisor_everyones(
    client: TestClient[web.Request, web.Application],
) -> None:
    assert (await client.get("/api/stats/me")).status == 401
    await parties.add_clerk(client.app, "wangli")
    await parties.add_clerk(client.app, "zhangzhuren", role="supervisor")
    await _sessions(client.app)
    await login(client, "wangli", parties.PASSWORD)
    mine = await (await client.get("/api/stats/me")).json()
    assert (mine["sessions_today"], mine["completed_today"]) == (2, 1)
    assert mine["average_handle_s"] == 300.0
    refused = await client.get("/api/stats/today")
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "forbidden"

    await login(client, "zhangzhuren", parties.PASSWORD)
    day = await (await client.get("/api/stats/today")).json()
    assert day["sessions"] == 3
    assert {b["label"]: b["count"] for b in day["wait_histogram"]} == {
        "<1": 1, "1-3": 0, "3-5": 1, "5-10": 0, "10-20": 1, "20+": 0}
    assert sum(h["count"] for h in day["sessions_per_hour"]) == 3
    assert day["outcomes"] == {"completed": 2, "failed": 1}
    assert [r["count"] for r in day["ratings"]] == [0, 0, 0, 0, 0]
