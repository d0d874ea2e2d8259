"""The pages and the browser library are served by the server itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from server.app import CLIENT_WEB
from server.web_pages import SOCKET_IO_BUNDLE


@pytest.mark.parametrize("url, folder", [("/kiosk/", "kiosk"), ("/console/", "console"),
                                         ("/m/", "mobile"), ("/supervisor/", "supervisor")])
async def test_each_page_is_served_at_its_path(
    client: TestClient[web.Request, web.Application], url: str, folder: str
) -> None:
    response = await client.get(url)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-cache"
    body = await response.text()
    assert body == (CLIENT_WEB / folder / "index.html").read_text()
    assert f'src="/static/{folder}/' in body


async def test_a_page_without_its_slash_redirects_keeping_the_query(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/kiosk?provision=ABCD-EFGH", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/kiosk/?provision=ABCD-EFGH"


async def test_modules_and_the_socket_io_bundle_are_served(
    client: TestClient[web.Request, web.Application],
) -> None:
    module = await client.get("/static/lib/connection.js")
    assert module.status == 200
    assert module.headers["Cache-Control"] == "no-cache"
    assert 'from "/vendor/socket.io.esm.min.js"' in await module.text()
    bundle = await client.get("/vendor/socket.io.esm.min.js")
    assert bundle.status == 200, "run ./scripts/test or ./scripts/serve: npm ci in client_web/"
    assert bundle.headers["Content-Type"].startswith("text/javascript")
    text = await bundle.text()
    assert text.startswith("/*!\n * Socket.IO v4.8.4")
    assert (CLIENT_WEB / SOCKET_IO_BUNDLE).read_text() == text


async def test_a_missing_npm_install_is_a_clear_error(
    tmp_path: Path, aiohttp_client: object,
) -> None:
    from aiohttp.test_utils import TestServer

    from server.web_pages import add_pages

    app = web.Application()
    root = tmp_path / "client_web"
    (root / "kiosk").mkdir(parents=True)
    (root / "index.html").write_text("home")
    (root / "kiosk" / "index.html").write_text("kiosk")
    add_pages(app, root)
    async with TestClient(TestServer(app)) as http:
        response = await http.get("/vendor/socket.io.esm.min.js")
        assert response.status == 503
        assert "npm ci" in await response.text()
        assert await (await http.get("/kiosk/")).text() == "kiosk"
        assert (await http.get("/static/../index.html")).status in (403, 404)
