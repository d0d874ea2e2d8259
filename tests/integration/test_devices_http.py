"""Kiosk provisioning and citizen sign-in over HTTP."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from server import app_keys, kiosks
from server.app import create_app
from server.sms import LogSmsSender
from server.storage import tables
from tests.conftest import AppClient, make_settings
from tests.integration.helpers import Client, error_code


async def _code(client: Client, hut_id: str = "dy-hall-01") -> str:
    async with client.app[app_keys.DB].begin() as conn:
        return await kiosks.create_code(conn, hut_id, ttl=timedelta(hours=1))


async def test_a_provisioning_code_yields_one_device_token_once(client: Client) -> None:
    hut_id = client.app[app_keys.KIOSK_CONFIG].huts[0].id
    code = await _code(client, hut_id)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)

    first = await client.post("/api/kiosk/provision", json={"code": code.lower()})
    assert first.status == 200
    body = await first.json()
    assert body["hut_id"] == hut_id
    token = body["device_token"]

    me = await client.get("/api/kiosk/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    assert (await me.json())["hut"]["id"] == hut_id

    again = await client.post("/api/kiosk/provision", json={"code": code})
    assert (again.status, await error_code(again)) == (401, "provision_code_invalid")


async def test_expired_code_and_forged_or_revoked_device_tokens_are_refused(
    client: Client,
) -> None:
    async with client.app[app_keys.DB].begin() as conn:
        stale = await kiosks.create_code(conn, "dy-hall-01", ttl=timedelta(seconds=-1))
    expired = await client.post("/api/kiosk/provision", json={"code": stale})
    assert await error_code(expired) == "provision_code_invalid"

    token = (await (await client.post("/api/kiosk/provision",
                                      json={"code": await _code(client)})).json())["device_token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = await client.get("/api/kiosk/me", headers={"Authorization": f"Bearer {forged}"})
    assert (response.status, await error_code(response)) == (401, "device_invalid")

    device_id = token[3:].split(".")[0]
    async with client.app[app_keys.DB].begin() as conn:
        assert await kiosks.revoke(conn, device_id)
    revoked = await client.get("/api/kiosk/me", headers={"Authorization": f"Bearer {token}"})
    assert await error_code(revoked) == "device_revoked"


async def test_a_kiosk_cannot_use_clerk_routes(client: Client) -> None:
    token = (await (await client.post("/api/kiosk/provision",
                                      json={"code": await _code(client)})).json())["device_token"]
    response = await client.get("/api/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert (response.status, await error_code(response)) == (403, "forbidden")


async def test_phone_code_sign_in_in_demo_mode(tmp_path: Path, aiohttp_client: AppClient) -> None:
    sms = LogSmsSender()
    client = await aiohttp_client(create_app(make_settings(tmp_path, demo=True), sms=sms))
    bad_phone = await client.post("/api/citizen/otp/request", json={"phone": "12345"})
    assert await error_code(bad_phone) == "invalid_phone"

    sent = await client.post("/api/citizen/otp/request", json={"phone": "13800138000"})
    assert sent.status == 200
    assert (await sent.json())["sent_to"] == "138****8000"
    code = re.search(r"验证码 (\d{6})", sms.sent["13800138000"])
    assert code is not None
    too_soon = await client.post("/api/citizen/otp/request", json={"phone": "13800138000"})
    assert (too_soon.status, await error_code(too_soon)) == (429, "otp_too_soon")

    wrong = "000000" if code.group(1) != "000000" else "111111"
    bad = await client.post("/api/citizen/otp/verify",
                            json={"phone": "13800138000", "code": wrong})
    assert await error_code(bad) == "otp_wrong"
    good = await client.post("/api/citizen/otp/verify",
                             json={"phone": "13800138000", "code": code.group(1)})
    assert good.status == 200
    token = (await good.json())["token"]
    me = await client.get("/api/citizen/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["citizen"]["role"] == "citizen"
    replay = await client.post("/api/citizen/otp/verify",
                               json={"phone": "13800138000", "code": code.group(1)})
    assert await error_code(replay) == "otp_expired"


async def test_wrong_codes_are_counted_and_exhaust_the_challenge(
    tmp_path: Path, aiohttp_client: AppClient
) -> None:
    sms = LogSmsSender()
    client = await aiohttp_client(create_app(make_settings(tmp_path, demo=True), sms=sms))
    await client.post("/api/citizen/otp/request", json={"phone": "13900139000"})
    code = re.search(r"(\d{6})", sms.sent["13900139000"])
    assert code is not None
    wrong = "000000" if code.group(1) != "000000" else "111111"
    for _ in range(5):
        await client.post("/api/citizen/otp/verify", json={"phone": "13900139000", "code": wrong})
    async with client.app[app_keys.DB].connect() as conn:
        attempts = await conn.scalar(sa.select(tables.otp_challenges.c.attempts))
    assert attempts == 5
    right = await client.post("/api/citizen/otp/verify",
                              json={"phone": "13900139000", "code": code.group(1)})
    assert await error_code(right) == "otp_expired"


async def test_phone_sign_in_is_off_outside_demo_mode(client: Client) -> None:
    response = await client.post("/api/citizen/otp/request", json={"phone": "13800138000"})
    assert (response.status, await error_code(response)) == (404, "otp_disabled")
