"""Real socket.io clients playing kiosks, citizens, clerks and supervisors in tests."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
import socketio
from aiohttp import web
from yarl import URL

from server import app_keys, kiosks
from server.accounts import ClerkSpec, create_clerk
from server.citizen_tokens import mint
from server.http_support import token_policy

PASSWORD = "Correct-horse-42"


class Served(Protocol):
    """Where parties connect: an in-process ``TestServer``, or a server process (the
    app then is a local, unstarted copy used for its database and settings)."""

    @property
    def app(self) -> web.Application: ...
    def make_url(self, path: str) -> URL: ...


TIMEOUT = 5.0
OPEN: list[Party] = []
"""Every party created by a test; ``close_all`` disconnects them before the server stops
(an open WebSocket would hold the server's shutdown for its whole timeout)."""


async def close_all() -> None:
    while OPEN:
        party = OPEN.pop()
        if party.client.connected:
            await party.client.disconnect()


class Party:
    """One connected client; records every event it receives, per event name."""

    def __init__(self, server: Served, namespace: str) -> None:
        self.server = server
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.last_seq = 0
        self.client.on("*", self._record, namespace=namespace)
        OPEN.append(self)

    async def _record(self, event: str, data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("seq"), int):
            self.last_seq = max(self.last_seq, data["seq"])
        self.events[event].put_nowait(data)

    async def connect(self, *, auth: Any = None, headers: dict[str, str] | None = None) -> None:
        await self.client.connect(str(self.server.make_url("/")), namespaces=[self.namespace],
                                  auth=auth, headers=dict(headers or {}),
                                  transports=["websocket"], wait_timeout=TIMEOUT)
        await self.next("hello")

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.client.call(event, data if data is not None else {},
                                                        namespace=self.namespace,
                                                        timeout=TIMEOUT)
        return result

    async def ok(self, event: str, data: Any = None) -> dict[str, Any]:
        result = await self.call(event, data)
        assert result.get("ok") is True, result
        return result

    async def next(self, event: str, wait_s: float = TIMEOUT) -> dict[str, Any]:
        return await asyncio.wait_for(self.events[event].get(), wait_s)

    async def until(self, event: str, predicate: Any, wait_s: float = TIMEOUT) -> dict[str, Any]:
        """The first ``event`` whose payload satisfies ``predicate``."""
        async def wait() -> dict[str, Any]:
            while True:
                data = await self.events[event].get()
                if predicate(data):
                    return data
        return await asyncio.wait_for(wait(), wait_s)

    def drain(self, event: str) -> list[dict[str, Any]]:
        queue = self.events[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    async def disconnect(self) -> None:
        await self.client.disconnect()


async def kiosk(server: Served, hut_id: str = "dy-hall-01") -> Party:
    app = server.app
    async with app[app_keys.DB].begin() as conn:
        code = await kiosks.create_code(conn, hut_id, ttl=timedelta(hours=1))
        _, token = await kiosks.redeem_code(conn, code, ip=None)
    party = Party(server, "/kiosk")
    await party.connect(auth={"token": token})
    party.token = token  # type: ignore[attr-defined]
    return party


async def citizen(server: Served, sub: str = "wx-1") -> Party:
    party = Party(server, "/citizen")
    await party.connect(auth={"token": mint(token_policy(server.app), sub, ttl_s=3600)})
    return party


async def add_clerk(app: web.Application, username: str, *, role: str = "clerk",
                    skills: tuple[str, ...] = ("*",),
                    jurisdictions: tuple[str, ...] = ("370500",)) -> None:
    async with app[app_keys.DB].begin() as conn:
        await create_clerk(conn, ClerkSpec(username, username.title(), "approval", role,
                                           skills, jurisdictions), PASSWORD, must_change=False)


async def clerk_cookie(server: Served, username: str) -> str:
    async with aiohttp.ClientSession() as http:
        response = await http.post(server.make_url("/api/auth/login"),
                                   json={"username": username, "password": PASSWORD})
        assert response.status == 200, await response.text()
        value: str = response.cookies["xw_session"].value
        return value


async def console(server: Served, username: str, namespace: str = "/clerk") -> Party:
    """Another console tab (or a reconnection) of a clerk who already has an account."""
    party = Party(server, namespace)
    await party.connect(headers={"Cookie": f"xw_session={await clerk_cookie(server, username)}"})
    return party


async def clerk(server: Served, username: str, *, available: bool = True,
                namespace: str = "/clerk", **kwargs: Any) -> Party:
    await add_clerk(server.app, username, **kwargs)
    party = await console(server, username, namespace)
    if available and namespace == "/clerk":
        await party.ok("presence.set", {"state": "available"})
    return party
