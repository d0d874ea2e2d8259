"""Operations endpoints for load balancers and Prometheus."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from server import app_keys
from server.storage.database import head_revision

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: the database answers and its schema is the code's."""
    db = request.app[app_keys.DB]
    checks: dict[str, str] = {}
    try:
        await db.ping()
        checks["database"] = "ok"
        current = await db.current_revision()
        head = head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, code needs {head}"
    except Exception as exc:  # readiness must report, never raise
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
        checks.setdefault("migrations", "unknown")
    ready = all(value == "ok" for value in checks.values())
    return web.json_response({"status": "ok" if ready else "unavailable", "checks": checks},
                             status=200 if ready else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = request.app[app_keys.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
