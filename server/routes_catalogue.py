"""The public service catalogue: matters, huts, regions (what any citizen may read)."""

from __future__ import annotations

from aiohttp import web

from server import app_keys
from server.errors import NotFound
from server.http_support import identify

routes = web.RouteTableDef()


@routes.get("/api/catalogue")
async def catalogue(request: web.Request) -> web.Response:
    """All matters, or the ones a kiosk's hut offers when a kiosk asks."""
    config = request.app[app_keys.KIOSK_CONFIG]
    principal = await identify(request)
    if principal is not None and principal.role == "kiosk" and principal.hut_id:
        matters = config.matters_for_hut(principal.hut_id)
    else:
        matters = list(config.matters)
    return web.json_response({
        "departments": [d.model_dump(mode="json") for d in config.departments],
        "categories": [c.model_dump(mode="json") for c in config.categories],
        "matters": [m.model_dump(mode="json") for m in matters],
    })


@routes.get("/api/huts")
async def huts(request: web.Request) -> web.Response:
    config = request.app[app_keys.KIOSK_CONFIG]
    return web.json_response({"huts": [h.model_dump(mode="json") for h in config.huts]})


@routes.get("/api/huts/{hut_id}")
async def hut(request: web.Request) -> web.Response:
    config = request.app[app_keys.KIOSK_CONFIG]
    hut_id = request.match_info["hut_id"]
    try:
        found = config.hut(hut_id)
    except KeyError:
        raise NotFound("没有该晓屋", f"no hut {hut_id!r}", code="hut_not_found") from None
    return web.json_response({"hut": found.model_dump(mode="json"),
                              "matters": [m.code for m in config.matters_for_hut(hut_id)]})
