"""Clerk sign-in: login, session, logout, password change."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, Field

from server import accounts, app_keys, audit, web_sessions
from server.errors import NotAuthenticated
from server.http_support import client_ip, parse_body, require
from server.passwords import verify_password_off_loop
from server.principals import STAFF_ROLES

routes = web.RouteTableDef()


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordBody(BaseModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


@routes.post("/api/auth/login")
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginBody)
    settings = request.app[app_keys.SETTINGS]
    db = request.app[app_keys.DB]
    metrics = request.app[app_keys.METRICS]
    try:
        row = await accounts.authenticate(
            db, body.username.strip().lower(), body.password,
            threshold=settings.lockout_threshold,
            lockout=timedelta(seconds=settings.lockout_s), ip=client_ip(request),
        )
    except NotAuthenticated as exc:
        metrics.logins.labels(exc.code).inc()
        raise
    metrics.logins.labels("success").inc()
    async with db.begin() as conn:
        token, csrf = await web_sessions.open_session(
            conn, row.id, ttl=timedelta(seconds=settings.session_ttl_s),
            ip=client_ip(request), user_agent=request.headers.get("User-Agent"),
        )
    response = web.json_response({
        "clerk": accounts.principal_from_row(row).public(),
        "csrf_token": csrf,
        "must_change_password": row.must_change_password,
    })
    response.set_cookie(
        web_sessions.COOKIE_NAME, token, httponly=True, samesite="Strict",
        secure=settings.secure_cookies, path="/", max_age=settings.session_ttl_s,
    )
    return response


@routes.get("/api/auth/session")
async def session(request: web.Request) -> web.Response:
    principal = await require(request, STAFF_ROLES)
    return web.json_response({"clerk": principal.public(), "csrf_token": principal.csrf_token,
                              "must_change_password": principal.must_change_password})


@routes.post("/api/auth/logout")
async def logout(request: web.Request) -> web.Response:
    principal = await require(request, STAFF_ROLES)
    async with request.app[app_keys.DB].begin() as conn:
        if principal.session_hash:
            await web_sessions.revoke(conn, principal.session_hash)
        await audit.record(conn, actor=principal.subject, role=principal.role, action="logout",
                           object_type="clerk", object_id=str(principal.clerk_id),
                           outcome="success", ip=client_ip(request))
    response = web.json_response({"ok": True})
    response.del_cookie(web_sessions.COOKIE_NAME, path="/")
    return response


@routes.post("/api/auth/password")
async def change_password(request: web.Request) -> web.Response:
    principal = await require(request, STAFF_ROLES)
    body = await parse_body(request, PasswordBody)
    assert principal.clerk_id is not None
    async with request.app[app_keys.DB].begin() as conn:
        row = await accounts.get_clerk(conn, principal.clerk_id)
        if row is None or not await verify_password_off_loop(row.password_hash,
                                                            body.old_password):
            raise NotAuthenticated("原密码错误", "current password is wrong",
                                   code="invalid_credentials")
        await accounts.set_password(conn, row.username, body.new_password, must_change=False,
                                    keep_session=principal.session_hash)
        await audit.record(conn, actor=principal.subject, role=principal.role,
                           action="password.change", object_type="clerk",
                           object_id=str(principal.clerk_id), outcome="success",
                           ip=client_ip(request))
    return web.json_response({"ok": True})
