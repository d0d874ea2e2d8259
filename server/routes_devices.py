"""Kiosk provisioning and citizen sign-in (entry token check, demo phone + code)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, Field

from server import app_keys, citizen_tokens, kiosks, otp
from server.errors import NotFound
from server.http_support import client_ip, parse_body, require, token_policy
from server.sms import mask_phone

routes = web.RouteTableDef()
CITIZEN_SESSION_TTL_S = 2 * 3600


class ProvisionBody(BaseModel):
    code: str = Field(min_length=4, max_length=32)


class OtpRequestBody(BaseModel):
    phone: str = Field(min_length=1, max_length=20)


class OtpVerifyBody(BaseModel):
    phone: str = Field(min_length=1, max_length=20)
    code: str = Field(min_length=4, max_length=8)


@routes.post("/api/kiosk/provision")
async def provision(request: web.Request) -> web.Response:
    body = await parse_body(request, ProvisionBody)
    async with request.app[app_keys.DB].begin() as conn:
        hut_id, token = await kiosks.redeem_code(conn, body.code, ip=client_ip(request))
    return web.json_response({"hut_id": hut_id, "device_token": token})


@routes.get("/api/kiosk/me")
async def kiosk_me(request: web.Request) -> web.Response:
    principal = await require(request, {"kiosk"})
    config = request.app[app_keys.KIOSK_CONFIG]
    assert principal.hut_id is not None
    try:
        hut = config.hut(principal.hut_id)
    except KeyError:
        raise NotFound("该晓屋已从配置中移除", "this hut is no longer configured",
                       code="hut_not_configured") from None
    return web.json_response({"device": principal.public(), "hut": hut.model_dump(mode="json")})


@routes.get("/api/citizen/me")
async def citizen_me(request: web.Request) -> web.Response:
    principal = await require(request, {"citizen"})
    return web.json_response({"citizen": principal.public()})


def _demo_only(request: web.Request) -> None:
    if not request.app[app_keys.SETTINGS].demo:
        raise NotFound("未启用短信验证码登录", "phone sign-in is only enabled in demo mode",
                       code="otp_disabled")


@routes.post("/api/citizen/otp/request")
async def otp_request(request: web.Request) -> web.Response:
    _demo_only(request)
    body = await parse_body(request, OtpRequestBody)
    settings = request.app[app_keys.SETTINGS]
    async with request.app[app_keys.DB].begin() as conn:
        code = await otp.issue(conn, settings.token_secret(), body.phone,
                               ttl=timedelta(seconds=settings.otp_ttl_s))
    await request.app[app_keys.SMS].send(
        body.phone, f"【东营政务晓屋】验证码 {code}，{settings.otp_ttl_s // 60} 分钟内有效。"
    )
    return web.json_response({"sent_to": mask_phone(body.phone), "ttl_s": settings.otp_ttl_s})


@routes.post("/api/citizen/otp/verify")
async def otp_verify(request: web.Request) -> web.Response:
    _demo_only(request)
    body = await parse_body(request, OtpVerifyBody)
    settings = request.app[app_keys.SETTINGS]
    async with request.app[app_keys.DB].begin() as conn:
        outcome = await otp.redeem(conn, settings.token_secret(), body.phone, body.code,
                                   max_attempts=settings.otp_max_attempts)
    if not isinstance(outcome, str):
        raise outcome
    token = citizen_tokens.mint(token_policy(request.app), f"phone:{outcome[:32]}",
                                ttl_s=CITIZEN_SESSION_TTL_S)
    return web.json_response({"token": token, "expires_in": CITIZEN_SESSION_TTL_S})
