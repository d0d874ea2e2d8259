"""A socket.io namespace that admits only the roles it serves.

The queue and call events (signaling issue) are added by subclasses; this base does the
part every namespace shares: authenticate on connect, keep the principal in the
socket's session, count connections.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import socketio
import structlog
from aiohttp import web

from server import app_keys
from server.principals import Principal
from server.socket_auth import authenticate_connect

log = structlog.get_logger("xiaowu.socket")


class RoleNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, app: web.Application, namespace: str, roles: Collection[str]) -> None:
        super().__init__(namespace)
        self.app = app
        self.roles = frozenset(roles)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_connect(self.app, self.namespace, self.roles, environ,
                                               auth)
        await self.save_session(sid, {"principal": principal})
        self.app[app_keys.METRICS].socket_connections.labels(self.namespace).inc()
        log.info("socket.connect", namespace=self.namespace, sid=sid,
                 actor=principal.subject)
        await self.emit("hello", {"you": principal.public()}, to=sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.app[app_keys.METRICS].socket_connections.labels(self.namespace).dec()
        log.info("socket.disconnect", namespace=self.namespace, sid=sid, reason=str(reason))

    async def principal(self, sid: str) -> Principal:
        session: dict[str, Any] = await self.get_session(sid)
        principal: Principal = session["principal"]
        return principal


NAMESPACE_ROLES: dict[str, frozenset[str]] = {
    "/kiosk": frozenset({"kiosk"}),
    "/citizen": frozenset({"citizen"}),
    "/clerk": frozenset({"clerk", "supervisor", "admin"}),
    "/supervisor": frozenset({"supervisor", "admin"}),
}
