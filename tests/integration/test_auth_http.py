"""Clerk login over HTTP: cookie session, CSRF, lockout, logout, audit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from aiohttp import web

from server import app_keys
from server.passwords import hash_password_off_loop, verify_password_off_loop
from server.storage import tables
from server.storage.types import utcnow
from tests.conftest import AppClient
from tests.integration.helpers import PASSWORD, Client, add_clerk, error_code, login


async def _audit(app: web.Application) -> list[tuple[str, str, str]]:
    async with app[app_keys.DB].connect() as conn:
        rows = await conn.execute(
            sa.select(tables.audit_log.c.actor, tables.audit_log.c.action,
                      tables.audit_log.c.outcome).order_by(tables.audit_log.c.id))
        return [tuple(r) for r in rows]


async def test_login_sets_a_strict_httponly_cookie_and_returns_a_csrf_token(
    client: Client,
) -> None:
    await add_clerk(client.app)
    response = await client.post("/api/auth/login",
                                 json={"username": "wangli", "password": PASSWORD})
    assert response.status == 200
    body = await response.json()
    assert body["clerk"]["subject"] == "clerk:wangli"
    assert len(body["csrf_token"]) >= 32
    cookie = response.cookies["xw_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"

    session = await client.get("/api/auth/session")
    assert session.status == 200
    assert (await session.json())["csrf_token"] == body["csrf_token"]
    assert await _audit(client.app) == [("clerk:wangli", "login", "success")]


async def test_wrong_password_and_unknown_user_get_the_same_refusal(client: Client) -> None:
    await add_clerk(client.app)
    wrong = await client.post("/api/auth/login",
                              json={"username": "wangli", "password": "nope-nope-1"})
    unknown = await client.post("/api/auth/login",
                                json={"username": "nobody", "password": "nope-nope-1"})
    assert (wrong.status, await error_code(wrong)) == (401, "invalid_credentials")
    assert (unknown.status, await error_code(unknown)) == (401, "invalid_credentials")
    assert "xw_session" not in wrong.cookies
    assert await _audit(client.app) == [
        ("clerk:wangli", "login", "failure"), ("clerk:nobody", "login", "failure")]


async def test_five_failures_lock_the_account_even_for_the_right_password(
    client: Client,
) -> None:
    await add_clerk(client.app)
    codes = []
    for _ in range(5):
        response = await client.post("/api/auth/login",
                                     json={"username": "wangli", "password": "bad-guess-99"})
        codes.append(await error_code(response))
    assert codes == ["invalid_credentials"] * 4 + ["account_locked"]
    right = await client.post("/api/auth/login",
                              json={"username": "wangli", "password": PASSWORD})
    assert (right.status, await error_code(right)) == (401, "account_locked")
    outcomes = [outcome for _, _, outcome in await _audit(client.app)]
    assert outcomes == ["failure"] * 4 + ["failure_locked", "locked"]


async def test_lock_expires_after_the_lockout_period(client: Client) -> None:
    await add_clerk(client.app)
    for _ in range(5):
        await client.post("/api/auth/login", json={"username": "wangli", "password": "x-bad-1"})
    async with client.app[app_keys.DB].begin() as conn:  # the clock moves on
        await conn.execute(sa.update(tables.clerks).values(
            locked_until=utcnow() - timedelta(minutes=1)))
    assert await login(client)


async def test_state_changing_request_without_csrf_token_is_refused(client: Client) -> None:
    await add_clerk(client.app)
    csrf = await login(client)
    missing = await client.post("/api/auth/logout")
    assert (missing.status, await error_code(missing)) == (403, "csrf_failed")
    wrong = await client.post("/api/auth/logout", headers={"X-CSRF-Token": "x" * 43})
    assert (wrong.status, await error_code(wrong)) == (403, "csrf_failed")
    still = await client.get("/api/auth/session")
    assert still.status == 200

    done = await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert done.status == 200


async def test_logout_ends_the_server_side_session(client: Client) -> None:
    await add_clerk(client.app)
    csrf = await login(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["xw_session"].value
    await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    replay = await client.get("/api/auth/session", cookies={"xw_session": cookie})
    assert (replay.status, await error_code(replay)) == (401, "not_authenticated")
    actions = [action for _, action, _ in await _audit(client.app)]
    assert actions == ["login", "logout"]


async def test_password_change_checks_the_old_one_and_strength(client: Client) -> None:
    await add_clerk(client.app)
    csrf = await login(client)
    headers = {"X-CSRF-Token": csrf}
    bad_old = await client.post("/api/auth/password", headers=headers,
                                json={"old_password": "nope", "new_password": "New-pass-2026"})
    assert await error_code(bad_old) == "invalid_credentials"
    weak = await client.post("/api/auth/password", headers=headers,
                             json={"old_password": PASSWORD, "new_password": "12345678901"})
    assert await error_code(weak) == "weak_password"
    ok = await client.post("/api/auth/password", headers=headers,
                           json={"old_password": PASSWORD, "new_password": "New-pass-2026"})
    assert ok.status == 200
    assert await login(client, password="New-pass-2026")


async def test_foreign_origin_cannot_post(client: Client) -> None:
    await add_clerk(client.app)
    response = await client.post("/api/auth/login", headers={"Origin": "https://evil.example"},
                                 json={"username": "wangli", "password": PASSWORD})
    assert (response.status, await error_code(response)) == (403, "origin_not_allowed")
    same = await client.post("/api/auth/login", headers={"Origin": "http://127.0.0.1:8080"},
                             json={"username": "wangli", "password": PASSWORD})
    assert same.status == 200


async def test_malformed_bodies_get_stable_codes(client: Client) -> None:
    not_json = await client.post("/api/auth/login", data=b"{oops")
    assert (not_json.status, await error_code(not_json)) == (400, "invalid_json")
    missing = await client.post("/api/auth/login", json={"username": "wangli"})
    body = await missing.json()
    assert body["error"]["code"] == "invalid_payload"
    assert body["error"]["detail"] == {"field": "password"}
    unknown_route = await client.get("/api/nothing-here")
    assert (unknown_route.status, await error_code(unknown_route)) == (404, "not_found")


async def test_changing_the_password_ends_the_clerks_other_sessions(
    client: Client, aiohttp_client: AppClient
) -> None:
    await add_clerk(client.app)
    other = await aiohttp_client(client.server)
    await login(other)
    csrf = await login(client)
    changed = await client.post("/api/auth/password", headers={"X-CSRF-Token": csrf},
                                json={"old_password": PASSWORD, "new_password": "New-pass-2026"})
    assert changed.status == 200
    assert (await client.get("/api/auth/session")).status == 200
    stale = await other.get("/api/auth/session")
    assert (stale.status, await error_code(stale)) == (401, "not_authenticated")


async def test_a_one_time_password_must_be_replaced_first(client: Client) -> None:
    await add_clerk(client.app, must_change=True)
    response = await client.post("/api/auth/login",
                                 json={"username": "wangli", "password": PASSWORD})
    body = await response.json()
    assert body["must_change_password"] is True
    session = await (await client.get("/api/auth/session")).json()
    assert session["must_change_password"] is True
    await client.post("/api/auth/password", headers={"X-CSRF-Token": body["csrf_token"]},
                      json={"old_password": PASSWORD, "new_password": "New-pass-2026"})
    session = await (await client.get("/api/auth/session")).json()
    assert session["must_change_password"] is False


async def test_concurrent_wrong_passwords_each_count_towards_the_lock(client: Client) -> None:
    """The verify runs off the event loop, so attempts overlap: each failure is counted
    in the database (an increment), not as 'what I read plus one'."""
    await add_clerk(client.app)
    responses = await asyncio.gather(*(
        client.post("/api/auth/login", json={"username": "wangli", "password": "bad-guess-99"})
        for _ in range(5)))
    codes = sorted([await error_code(r) for r in responses])
    assert codes == ["account_locked"] + ["invalid_credentials"] * 4
    right = await client.post("/api/auth/login",
                              json={"username": "wangli", "password": PASSWORD})
    assert (right.status, await error_code(right)) == (401, "account_locked")


async def test_a_shift_of_clerks_signing_in_at_once_all_get_in(client: Client) -> None:
    """Overlapping logins on SQLite: every transaction that writes starts with its write,
    so none fails with "database is locked"."""
    names = [f"clerk{n:02d}" for n in range(24)]
    for name in names:
        await add_clerk(client.app, name)
    responses = await asyncio.gather(*(
        client.post("/api/auth/login", json={"username": name, "password": PASSWORD})
        for name in names))
    assert [r.status for r in responses] == [200] * len(names)
    successes = [a for a in await _audit(client.app) if a[2] == "success"]
    assert len(successes) == len(names)


async def test_argon2_work_leaves_the_event_loop_free() -> None:
    """A verify takes ~0.2 s of CPU by design; meanwhile the loop keeps serving others."""
    stored = await hash_password_off_loop(PASSWORD)
    turns = 0
    done = False

    async def other_work() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    turns = 0
    assert await verify_password_off_loop(stored, PASSWORD)
    assert not await verify_password_off_loop(stored, PASSWORD + "x")
    done = True
    await other
    assert turns > 0
