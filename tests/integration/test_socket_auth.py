"""socket.io connections authenticate with the same credentials as HTTP, per namespace,
and are refused with a stable code. Real python-socketio clients on a real port."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from server import app_keys, kiosks
from server.citizen_tokens import mint
from server.http_support import token_policy
from tests.integration.helpers import PASSWORD, add_clerk

ServerFactory = Any


@pytest.fixture
async def server(app: web.Application, aiohttp_server: ServerFactory) -> TestServer:
    srv: TestServer = await aiohttp_server(app)
    return srv


async def _connect(server: TestServer, namespace: str, *, auth: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[socketio.AsyncClient, Any]:
    """Connect; returns the client and the ``hello`` payload or the refusal data."""
    client = socketio.AsyncClient(reconnection=False)
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @client.on("hello", namespace=namespace)  # type: ignore[untyped-decorator]
    async def hello(data: Any) -> None:
        outcome.set_result(("hello", data))

    @client.on("connect_error", namespace=namespace)  # type: ignore[untyped-decorator]
    async def refused(data: Any) -> None:
        if not outcome.done():
            refused_by_us = isinstance(data, dict) and "data" in data
            outcome.set_result(("refused", data["data"]) if refused_by_us else ("error", data))

    try:
        await client.connect(str(server.make_url("/")), namespaces=[namespace], auth=auth,
                             headers=dict(headers or {}), transports=["websocket"],
                             wait_timeout=5)
    except socketio.exceptions.ConnectionError as exc:
        if not outcome.done():
            outcome.set_result(("error", str(exc)))
    result = await asyncio.wait_for(outcome, 5)
    return client, result


async def _device_token(app: web.Application) -> str:
    async with app[app_keys.DB].begin() as conn:
        code = await kiosks.create_code(conn, "dy-hall-01", ttl=timedelta(hours=1))
    async with app[app_keys.DB].begin() as conn:
        _, token = await kiosks.redeem_code(conn, code, ip=None)
    return token


async def test_kiosk_connects_with_its_device_token(server: TestServer) -> None:
    token = await _device_token(server.app)
    client, (kind, data) = await _connect(server, "/kiosk", auth={"token": token})
    assert kind == "hello"
    assert data["you"]["role"] == "kiosk"
    assert data["you"]["hut_id"] == "dy-hall-01"
    await client.disconnect()


async def test_missing_and_bad_credentials_are_refused_with_codes(server: TestServer) -> None:
    for namespace in ("/kiosk", "/citizen", "/clerk", "/supervisor"):
        client, (kind, data) = await _connect(server, namespace)
        assert (kind, data["code"]) == ("refused", "not_authenticated"), namespace
        await client.disconnect()
    expired = mint(token_policy(server.app), "c1", ttl_s=60, now=0)
    client, (kind, data) = await _connect(server, "/citizen", auth={"token": expired})
    assert (kind, data["code"]) == ("refused", "token_expired")
    await client.disconnect()
    client, (kind, data) = await _connect(server, "/kiosk", auth={"token": "kd_bad.secret"})
    assert (kind, data["code"]) == ("refused", "device_invalid")
    await client.disconnect()


async def test_a_role_cannot_enter_another_roles_namespace(server: TestServer) -> None:
    citizen = mint(token_policy(server.app), "c1", ttl_s=600)
    client, (kind, data) = await _connect(server, "/clerk", auth={"token": citizen})
    assert (kind, data["code"]) == ("refused", "wrong_namespace")
    await client.disconnect()
    client, (kind, data) = await _connect(server, "/citizen", auth={"token": citizen})
    assert kind == "hello" and data["you"]["role"] == "citizen"
    await client.disconnect()


async def test_clerk_connects_with_the_session_cookie_but_not_to_supervisor(
    server: TestServer,
) -> None:
    await add_clerk(server.app)
    async with web_client(server) as http:
        response = await http.post(server.make_url("/api/auth/login"),
                                   json={"username": "wangli", "password": PASSWORD})
        cookie = response.cookies["xw_session"].value
    headers = {"Cookie": f"xw_session={cookie}"}
    client, (kind, data) = await _connect(server, "/clerk", headers=headers)
    assert kind == "hello" and data["you"]["subject"] == "clerk:wangli"
    await client.disconnect()
    client, (kind, data) = await _connect(server, "/supervisor", headers=headers)
    assert (kind, data["code"]) == ("refused", "wrong_namespace")
    await client.disconnect()
    client, (kind, data) = await _connect(server, "/clerk",
                                          headers={"Cookie": "xw_session=forged"})
    assert (kind, data["code"]) == ("refused", "session_expired")
    await client.disconnect()


async def test_a_foreign_origin_is_refused_at_the_handshake(server: TestServer) -> None:
    citizen = mint(token_policy(server.app), "c1", ttl_s=600)
    client, (kind, _) = await _connect(server, "/citizen", auth={"token": citizen},
                                       headers={"Origin": "https://evil.example"})
    assert kind == "error"
    await client.disconnect()


def web_client(_server: TestServer) -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def test_a_clerk_with_a_one_time_password_cannot_connect_yet(server: TestServer) -> None:
    await add_clerk(server.app, must_change=True)
    async with web_client(server) as http:
        response = await http.post(server.make_url("/api/auth/login"),
                                   json={"username": "wangli", "password": PASSWORD})
        cookie = response.cookies["xw_session"].value
    client, (kind, data) = await _connect(server, "/clerk",
                                          headers={"Cookie": f"xw_session={cookie}"})
    assert (kind, data["code"]) == ("refused", "password_change_required")
    await client.disconnect()
