"""The web pages: each at its own path, their ES modules under ``/static/``, and the one
browser library they need (socket.io-client) served from the npm package the set-up
installed into ``client_web/node_modules`` (no CDN, no bundler).

Pages are plain files; nothing is rendered on the server. They are sent with
``Cache-Control: no-cache`` so a booth that stays open for months revalidates and picks
up a new release on its next load, while unchanged files still answer 304.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from server.errors import XiaowuError
from server.http_support import error_response

PAGES = {"kiosk": "kiosk", "console": "console", "m": "mobile", "supervisor": "supervisor"}
"""URL path -> folder under client_web/ holding its ``index.html``."""
SOCKET_IO_BUNDLE = Path("node_modules/socket.io-client/dist/socket.io.esm.min.js")
VENDOR_PATH = "/vendor/socket.io.esm.min.js"
NO_CACHE = {"Cache-Control": "no-cache"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebPackagesMissing(XiaowuError):
    code = "web_packages_missing"
    status = 503

    def __init__(self) -> None:
        super().__init__("页面依赖未安装，请运行 ./scripts/serve",
                         "browser packages are not installed: run ./scripts/serve "
                         "(npm ci in client_web/)")


def add_pages(app: web.Application, root: Path) -> None:
    """``/`` and every page; ``/kiosk`` redirects to ``/kiosk/`` so relative URLs work."""

    def file_handler(path: Path) -> Handler:
        async def handler(_request: web.Request) -> web.StreamResponse:
            return web.FileResponse(path, headers=NO_CACHE)
        return handler

    app.router.add_get("/", file_handler(root / "index.html"))
    for url, folder in PAGES.items():
        app.router.add_get(f"/{url}/", file_handler(root / folder / "index.html"))
        app.router.add_get(f"/{url}", _redirect_to(f"/{url}/"))

    bundle = root / SOCKET_IO_BUNDLE

    async def socket_io(_request: web.Request) -> web.StreamResponse:
        if not bundle.is_file():
            return error_response(WebPackagesMissing())
        return web.FileResponse(bundle, headers={**NO_CACHE,
                                                 "Content-Type": "text/javascript"})

    app.router.add_get(VENDOR_PATH, socket_io)
    if root.exists():
        app.router.add_static("/static/", root, show_index=False, follow_symlinks=False)
        app.on_response_prepare.append(_static_no_cache)


async def _static_no_cache(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-cache")


def _redirect_to(target: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        query = f"?{request.query_string}" if request.query_string else ""
        raise web.HTTPFound(target + query)
    return handler
