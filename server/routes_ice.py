"""ICE servers for the calling pages, with short-lived TURN credentials."""

from __future__ import annotations

from aiohttp import web

from server import app_keys
from server.http_support import require
from server.ice import browser_ice_servers

routes = web.RouteTableDef()
CALLERS = ("kiosk", "citizen", "clerk", "supervisor", "admin")


@routes.get("/api/ice")
async def ice(request: web.Request) -> web.Response:
    principal = await require(request, CALLERS)
    settings = request.app[app_keys.SETTINGS]
    return web.json_response({
        "iceServers": browser_ice_servers(settings, principal.subject),
        "media": settings.media_mode,
    })
