"""Authentication of socket.io connections with the same credentials as HTTP.

Kiosks and citizens send ``auth={"token": ...}`` (device token or entry token); the
clerk console's browser sends its session cookie with the handshake. A refusal is a
``ConnectionRefusedError``: the client gets ``{message, data: {code, message}}`` and
switches on ``data.code``.
"""

from __future__ import annotations

from collections.abc import Collection
from http.cookies import CookieError, SimpleCookie
from typing import Any

from aiohttp import web
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from server import app_keys, web_sessions
from server.accounts import principal_from_row
from server.errors import Forbidden, NotAuthenticated, XiaowuError
from server.http_support import principal_from_token
from server.principals import Principal


def _cookie(environ: dict[str, Any], name: str) -> str | None:
    raw = environ.get("HTTP_COOKIE")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


async def _identify(app: web.Application, environ: dict[str, Any], auth: Any) -> Principal:
    token = auth.get("token") if isinstance(auth, dict) else None
    if isinstance(token, str) and token:
        return await principal_from_token(app, token)
    cookie = _cookie(environ, web_sessions.COOKIE_NAME)
    if cookie:
        async with app[app_keys.DB].connect() as conn:
            row = await web_sessions.lookup(conn, cookie)
        if row is not None:
            return principal_from_row(row, session_hash=row.id_hash)
        raise NotAuthenticated("登录已过期，请重新登录", "session expired; sign in again",
                               code="session_expired")
    raise NotAuthenticated("缺少登录凭证", "no credentials sent")


async def authenticate_connect(
    app: web.Application, namespace: str, roles: Collection[str], environ: dict[str, Any],
    auth: Any,
) -> Principal:
    """The connecting principal, or ``ConnectionRefusedError`` carrying ``{code, message}``."""
    try:
        principal = await _identify(app, environ, auth)
        if principal.must_change_password:
            raise Forbidden("请先修改一次性密码", "change the one-time password first",
                            code="password_change_required")
        if principal.role not in roles:
            raise Forbidden("此身份不能连接到该通道",
                            f"role {principal.role} may not connect to {namespace}",
                            code="wrong_namespace")
    except XiaowuError as exc:
        app[app_keys.METRICS].socket_refused.labels(namespace, exc.code).inc()
        raise SocketRefused(exc.message, exc.to_dict()) from None
    return principal
