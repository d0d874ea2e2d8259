"""HTTP plumbing shared by every route: JSON errors, body validation, who is calling,
CSRF and Origin checks."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server import app_keys, citizen_tokens, kiosks, web_sessions
from server.accounts import principal_from_row
from server.errors import (
    BadRequest,
    Forbidden,
    NotAuthenticated,
    XiaowuError,
    invalid_payload,
)
from server.principals import Principal

log = structlog.get_logger("xiaowu.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Reachable while a one-time password still has to be replaced.
PASSWORD_CHANGE_PATHS = frozenset({"/api/auth/password", "/api/auth/session",
                                   "/api/auth/logout"})
PRINCIPAL_KEY: web.RequestKey[Principal | None] = web.RequestKey("principal", Principal)
CSRF_HEADER = "X-CSRF-Token"
SOCKET_IO_PATH = "/socket.io/"


def error_response(error: XiaowuError) -> web.Response:
    return web.json_response({"error": error.to_dict()}, status=error.status)


@web.middleware
def errors_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """Every failure leaves as ``{"error": {"code", "message"}}``; nothing else escapes.

    Not socket.io's requests: engine.io answers its own errors, and a websocket's request
    lasts as long as the connection, so a middleware frame awaiting it would be kept
    alive (with its locals) for hours by every idle connection. Returning the handler's
    awaitable instead of awaiting it leaves no frame behind.
    """
    if request.path.startswith(SOCKET_IO_PATH):
        return handler(request)
    return _answer_errors(request, handler)


async def _answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[app_keys.METRICS]
    route = request.match_info.route.resource.canonical if request.match_info.route.resource \
        else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except XiaowuError as exc:
        status = exc.status
        return error_response(exc)
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status, "http_error")
        return web.json_response(
            {"error": {"code": code, "message": f"{exc.reason}"}}, status=exc.status)
    except Exception:
        log.exception("http.unhandled", path=request.path, method=request.method)
        return error_response(XiaowuError("服务器内部错误", "internal server error"))
    finally:
        metrics.http_requests.labels(request.method, route, str(status)).inc()
        metrics.http_seconds.labels(route).observe(time.perf_counter() - started)


@web.middleware
def origin_middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
    """A state-changing request from a page of another origin is refused outright.

    A plain function, not a coroutine: it passes the handler's awaitable on, so no frame
    of it stays alive while a long request (a websocket) runs."""
    if request.method in UNSAFE_METHODS:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in request.app[app_keys.SETTINGS].origins:
            raise Forbidden("来源不被允许", f"origin {origin!r} not allowed",
                            code="origin_not_allowed")
    return handler(request)


async def parse_body(request: web.Request, model: type[M]) -> M:
    try:
        raw: Any = await request.json()
    except ValueError:
        raise BadRequest("请求内容不是有效的 JSON", "body is not valid JSON",
                         code="invalid_json") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid_payload(exc, "body") from None


def client_ip(request: web.Request) -> str | None:
    return request.remote


async def identify(request: web.Request) -> Principal | None:
    """Bearer token (kiosk device or citizen entry token) or the clerk session cookie."""
    if PRINCIPAL_KEY in request:
        return request[PRINCIPAL_KEY]
    principal: Principal | None = None
    auth = request.headers.get("Authorization", "")
    cookie = request.cookies.get(web_sessions.COOKIE_NAME)
    if auth.startswith("Bearer "):
        principal = await principal_from_token(request.app, auth[7:].strip())
    elif cookie:
        async with request.app[app_keys.DB].connect() as conn:
            row = await web_sessions.lookup(conn, cookie)
        if row is not None:
            principal = principal_from_row(row, session_hash=row.id_hash,
                                           csrf_token=row.csrf_token)
    request[PRINCIPAL_KEY] = principal
    return principal


async def principal_from_token(app: web.Application, token: str) -> Principal:
    if token.startswith(kiosks.TOKEN_PREFIX):
        async with app[app_keys.DB].connect() as conn:
            return await kiosks.authenticate(conn, token)
    return citizen_tokens.verify(token_policy(app), token)


def token_policy(app: web.Application) -> citizen_tokens.TokenPolicy:
    settings = app[app_keys.SETTINGS]
    return citizen_tokens.TokenPolicy(
        secret=settings.token_secret(), audience=settings.citizen_token_audience,
        max_age_s=settings.citizen_token_max_age_s,
    )


async def require(request: web.Request, roles: Collection[str]) -> Principal:
    """The caller, if authenticated with one of ``roles``; checks CSRF for cookie sessions."""
    principal = await identify(request)
    if principal is None:
        raise NotAuthenticated("请先登录", "authentication required")
    if principal.role not in roles:
        raise Forbidden("无权执行此操作", f"role {principal.role} may not do this")
    if principal.csrf_token is not None and request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, principal.csrf_token):
            raise Forbidden("安全校验失败，请刷新页面", "missing or wrong CSRF token",
                            code="csrf_failed")
    if principal.must_change_password and request.path not in PASSWORD_CHANGE_PATHS:
        raise Forbidden("请先修改一次性密码", "change the one-time password first",
                        code="password_change_required")
    return principal
