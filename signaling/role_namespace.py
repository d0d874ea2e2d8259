"""A socket.io namespace that admits only the roles it serves and runs its events safely.

Every event goes through :meth:`RoleNamespace.trigger_event`: flood control, schema
validation, the handler, and an ack that is either the handler's result or
``{"error": {code, message}}``. A handler never raises into python-socketio, so one bad
client cannot break the namespace for others.

Per socket the namespace keeps only its principal, in a plain dict (python-socketio's
session would add a dict per socket), and a flood-control bucket from the socket's first
event on: a socket that has sent nothing has a full bucket, so an idle connection (most
of the thousands of waiting citizens) carries none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, ClassVar

import socketio
import structlog
from aiohttp import web

from server import app_keys
from server.errors import TooManyRequests, XiaowuError
from server.principals import Principal
from server.socket_auth import authenticate_connect
from signaling.protocol import Payload, error_ack, parse
from signaling.ratelimit import TokenBucket, Verdict

log = structlog.get_logger("xiaowu.socket")
Handler = Callable[[str, Principal, Any], Awaitable[dict[str, Any] | None]]
EVENT_RATE = 20.0
EVENT_BURST = 40.0


class RoleNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    events: ClassVar[dict[str, type[Payload]]] = {}

    def __init__(self, app: web.Application, namespace: str, roles: Collection[str]) -> None:
        super().__init__(namespace)
        self.app = app
        self.roles = frozenset(roles)
        self._principals: dict[str, Principal] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._handlers: dict[str, Handler] = {}

    def handle(self, event: str, handler: Handler) -> None:
        if event not in self.events:
            raise KeyError(f"{event} has no schema in {type(self).__name__}.events")
        self._handlers[event] = handler

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        data = args[1] if len(args) > 1 else None
        return await self._run(sid, event, data)

    async def _run(self, sid: str, event: str, data: Any) -> dict[str, Any]:
        principal = self._principals.get(sid)
        if principal is None:  # python-socketio routes events only after connect
            return error_ack(XiaowuError("连接已断开", "the socket is not connected",
                                         code="not_connected", status=409))
        bucket = self._buckets.get(sid)
        if bucket is None:
            bucket = self._buckets[sid] = TokenBucket(rate=EVENT_RATE, burst=EVENT_BURST)
        verdict = bucket.take(time.monotonic())
        if verdict is not Verdict.ALLOW:
            if verdict is Verdict.DISCONNECT:
                log.warning("socket.flood_disconnect", namespace=self.namespace, sid=sid)
                asyncio.get_running_loop().create_task(self.disconnect(sid))
            return error_ack(TooManyRequests("操作过于频繁，请稍候",
                                             "too many events; slow down"))
        try:
            payload = parse(self.events, event, data)
            handler = self._handlers.get(event)
            if handler is None:
                return error_ack(XiaowuError("不支持的操作", f"{event} is not handled",
                                             code="unknown_event", status=400))
            result = await handler(sid, principal, payload)
            return {"ok": True, **(result or {})}
        except XiaowuError as exc:
            return error_ack(exc)
        except Exception:
            log.exception("socket.handler_failed", namespace=self.namespace, event=event)
            return error_ack(XiaowuError("服务器内部错误", "internal server error"))

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await authenticate_connect(self.app, self.namespace, self.roles, environ,
                                               auth)
        self._principals[sid] = principal
        self.app[app_keys.METRICS].socket_connections.labels(self.namespace).inc()
        log.info("socket.connect", namespace=self.namespace, sid=sid, actor=principal.subject)
        await self.emit("hello", {"you": principal.public()}, to=sid)
        await self.connected(sid, principal)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._buckets.pop(sid, None)
        principal = self._principals.pop(sid, None)
        self.app[app_keys.METRICS].socket_connections.labels(self.namespace).dec()
        log.info("socket.disconnect", namespace=self.namespace, sid=sid, reason=str(reason))
        if principal is not None:
            await self.disconnected(sid, principal)

    async def connected(self, sid: str, principal: Principal) -> None:
        """Hook for subclasses, after authentication and ``hello``."""

    async def disconnected(self, sid: str, principal: Principal) -> None:
        """Hook for subclasses."""

    def principal(self, sid: str) -> Principal:
        """The principal of a connected socket (KeyError otherwise)."""
        return self._principals[sid]


NAMESPACE_ROLES: dict[str, frozenset[str]] = {
    "/kiosk": frozenset({"kiosk"}),
    "/citizen": frozenset({"citizen"}),
    "/clerk": frozenset({"clerk", "supervisor", "admin"}),
    "/supervisor": frozenset({"supervisor", "admin"}),
}
