"""HTTP clients for case tests: a signed-in clerk (cookie + CSRF) and a booth (bearer), plus
a served session whose case the accept opened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.integration import parties
from tests.integration.parties import Party

TEACHER = "EDU-TQ-CONFIRM"


class Http:
    """One caller's HTTP session against the test server."""

    def __init__(self, server: TestServer, headers: dict[str, str] | None = None) -> None:
        self.server = server
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             headers=headers or {})
        self.csrf: str | None = None

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def login(self, username: str) -> Http:
        async with self.session.post(self.url("/api/auth/login"), json={
                "username": username, "password": parties.PASSWORD}) as response:
            assert response.status == 200, await response.text()
            self.csrf = (await response.json())["csrf_token"]
        return self

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.csrf is not None:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url(path), json=json, data=data,
                                        headers=self._headers(headers)) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    async def upload(self, case_id: str, slot: str, data: bytes, key: str | None,
                     filename: str = "photo.jpg") -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("slot", slot)
        form.add_field("file", data, filename=filename, content_type="image/jpeg")
        headers = {} if key is None else {"Idempotency-Key": key}
        return await self.call("POST", f"/api/cases/{case_id}/documents", data=form,
                               headers=headers)

    async def close(self) -> None:
        await self.session.close()


def error(body: Any) -> str:
    assert isinstance(body, dict), body
    code: str = body["error"]["code"]
    return code


@dataclass
class Served:
    kiosk: Party
    clerk: Party
    session_id: str
    case_id: str
    number: str
    booth: Http
    desk: Http

    async def close(self) -> None:
        await self.booth.close()
        await self.desk.close()


async def served(server: TestServer, matter: str = TEACHER, clerk: str = "wangli") -> Served:
    """A booth that queued, a clerk who accepted, and the case the accept opened."""
    kiosk = await parties.kiosk(server)
    await kiosk.ok("queue.join", {"matter": matter})
    desk_party = await parties.clerk(server, clerk)
    offer = await desk_party.next("offer")
    accepted = await desk_party.ok("offer.accept", {"offer_id": offer["offer_id"]})
    session_id = accepted["session"]["session_id"]
    opened = await desk_party.next("case.opened")
    assert opened["session_id"] == session_id
    booth = Http(server, {"Authorization": f"Bearer {kiosk.token}"})  # type: ignore[attr-defined]
    desk = await Http(server).login(clerk)
    return Served(kiosk, desk_party, session_id, opened["case_id"], opened["number"], booth,
                  desk)
