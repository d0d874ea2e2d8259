"""Small building blocks for loopback tests against a running app."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from server import app_keys
from server.accounts import ClerkSpec, create_clerk

PASSWORD = "Correct-horse-42"

Client = TestClient[web.Request, web.Application]


async def add_clerk(app: web.Application, username: str = "wangli", *, role: str = "clerk",
                    password: str = PASSWORD, must_change: bool = False) -> None:
    async with app[app_keys.DB].begin() as conn:
        await create_clerk(
            conn, ClerkSpec(username, "王丽", "approval", role, ("*",), ("370500",)),
            password, must_change=must_change,
        )


async def login(client: Client, username: str = "wangli", password: str = PASSWORD) -> str:
    """Sign in; the cookie stays in the client's jar. Returns the CSRF token."""
    response = await client.post("/api/auth/login",
                                 json={"username": username, "password": password})
    assert response.status == 200, await response.text()
    body = await response.json()
    csrf: str = body["csrf_token"]
    return csrf


async def error_code(response: object) -> str:
    from aiohttp import ClientResponse

    assert isinstance(response, ClientResponse)
    body = await response.json()
    code: str = body["error"]["code"]
    return code


def contiguous_run(sent: list[Any], got: list[Any]) -> bool:
    """Whether ``got`` is, item for item, an unbroken run of ``sent`` (frames relayed
    without a gap, a reordering or a change)."""
    return any(sent[i:i + len(got)] == got for i in range(len(sent) - len(got) + 1))
