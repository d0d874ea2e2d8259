"""The four role namespaces: what each kind of client may ask of the queue.

Sockets join a room named for their participant key, so the queue addresses people and
devices, never socket ids. A clerk may have several tabs open: the newest is active and
the others are told why they are not (``tab.inactive``) and refused (``inactive_tab``);
with several nodes the nodes tell each other of a clerk's tabs opening and closing, so
the rule holds across them.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from server import app_keys
from server.errors import Forbidden
from server.principals import Principal
from signaling.journal import Journal
from signaling.notifier import SocketNotifier
from signaling.protocol import (
    CITIZEN_EVENTS,
    CLERK_EVENTS,
    SUPERVISOR_EVENTS,
    Candidate,
    CaptureReply,
    CaptureRequest,
    Description,
    MatterRef,
    OfferDecline,
    OfferReply,
    PresenceSet,
    QueueJoin,
    RecordingConsent,
    Restart,
    Resume,
    SessionEnd,
    SessionRef,
    TicketAssign,
    TicketMove,
    error_ack,
)
from signaling.queue_service import QueueService, clerk_key, new_id
from signaling.role_namespace import NAMESPACE_ROLES, RoleNamespace

log = structlog.get_logger("xiaowu.socket")
WEBRTC_EVENTS = ("webrtc.offer", "webrtc.answer", "webrtc.candidate", "webrtc.restart")


def participant_of(principal: Principal) -> str:
    if principal.role in ("clerk", "supervisor", "admin"):
        return clerk_key(principal.subject.removeprefix("clerk:"))
    return principal.subject


class _QueueNamespace(RoleNamespace):
    def __init__(self, app: web.Application, namespace: str, queue: QueueService,
                 journal: Journal) -> None:
        super().__init__(app, namespace, NAMESPACE_ROLES[namespace])
        self.queue = queue
        self.journal = journal
        self._sockets: dict[str, list[str]] = {}
        for event in WEBRTC_EVENTS:
            self.handle(event, self._relay)

    async def _relay(self, sid: str, principal: Principal,
                     body: Description | Candidate | Restart) -> dict[str, Any]:
        event = {Description: f"webrtc.{getattr(body, 'type', '')}",
                 Candidate: "webrtc.candidate", Restart: "webrtc.restart"}[type(body)]
        return await self.queue.relay(participant_of(principal), body.session_id, event,
                                      body.model_dump(exclude_none=True))

    async def connected(self, sid: str, principal: Principal) -> None:
        key = participant_of(principal)
        self._sockets.setdefault(key, []).append(sid)
        await self.enter_room(sid, key)
        await self._tell_nodes(key, sid, opened=True)

    async def disconnected(self, sid: str, principal: Principal) -> None:
        key = participant_of(principal)
        sids = self._sockets.get(key, [])
        if sid in sids:
            sids.remove(sid)
        await self._tell_nodes(key, sid, opened=False)
        if not sids:
            self._sockets.pop(key, None)
            await self.participant_gone(key)

    async def participant_gone(self, key: str) -> None:
        """The participant's last socket closed."""

    async def _tell_nodes(self, key: str, sid: str, *, opened: bool) -> None:
        """With several nodes, record in Redis which sockets are open where. A failure
        only costs a grace timer on another node the knowledge that the participant is
        back (and a closed socket's entry goes when its node stops)."""
        nodes = self.app.get(app_keys.NODES)
        if nodes is None:
            return
        record = nodes.socket_opened if opened else nodes.socket_closed
        try:
            await record(self.namespace, key, sid)
        except (RedisError, OSError) as exc:
            log.warning("socket.presence_failed", namespace=self.namespace, error=str(exc))


class CitizenNamespace(_QueueNamespace):
    """``/kiosk`` (booth devices) and ``/citizen`` (mobile page)."""

    events = CITIZEN_EVENTS

    def __init__(self, app: web.Application, namespace: str, queue: QueueService,
                 journal: Journal) -> None:
        super().__init__(app, namespace, queue, journal)
        self.handle("queue.join", self._join)
        self.handle("queue.leave", self._leave)
        self.handle("session.resume", self._resume)
        self.handle("session.leave", self._leave)
        self.handle("session.connected", self._connected)
        self.handle("consent.recording", self._consent)
        self.handle("capture.reply", self._capture_reply)

    async def _consent(self, sid: str, principal: Principal,
                       body: RecordingConsent) -> dict[str, Any]:
        return await self.app[app_keys.RECORDING].consent(
            participant_of(principal), principal, body.session_id, body.granted, body.notice)

    async def _capture_reply(self, sid: str, principal: Principal,
                             body: CaptureReply) -> dict[str, Any]:
        other = await self.queue.party_of(participant_of(principal), body.session_id)
        await self.queue.notifier.send(other, "capture.reply", body.model_dump())
        return {}

    async def _join(self, sid: str, principal: Principal, body: QueueJoin) -> dict[str, Any]:
        return {"ticket": await self.queue.join(participant_of(principal), principal, body)}

    async def _leave(self, sid: str, principal: Principal, body: Any) -> dict[str, Any]:
        return {"left": await self.queue.leave(participant_of(principal), "citizen_left")}

    async def _resume(self, sid: str, principal: Principal, body: Resume) -> dict[str, Any]:
        return await self.queue.resume(participant_of(principal), body.last_seq)

    async def _connected(self, sid: str, principal: Principal,
                         body: SessionRef) -> dict[str, Any]:
        return await self.queue.connected(participant_of(principal), body.session_id)

    async def connected(self, sid: str, principal: Principal) -> None:
        await super().connected(sid, principal)
        await self.queue.citizen_online(participant_of(principal))

    async def participant_gone(self, key: str) -> None:
        await self.queue.citizen_offline(key)


class ClerkNamespace(_QueueNamespace):
    events = CLERK_EVENTS

    def __init__(self, app: web.Application, queue: QueueService, journal: Journal) -> None:
        super().__init__(app, "/clerk", queue, journal)
        self._elsewhere: set[str] = set()
        """Clerks whose active console tab is on another node: every tab here is
        inactive."""
        self.handle("presence.set", self._presence)
        self.handle("offer.accept", self._accept)
        self.handle("offer.decline", self._decline)
        self.handle("session.resume", self._resume)
        self.handle("session.connected", self._connected)
        self.handle("session.end", self._end)
        self.handle("wrapup.done", self._wrapup_done)
        self.handle("queue.overview", self._overview)
        self.handle("recording.start", self._recording_start)
        self.handle("recording.stop", self._recording_stop)
        self.handle("capture.request", self._capture_request)

    async def _recording_start(self, sid: str, principal: Principal,
                               body: SessionRef) -> dict[str, Any]:
        return await self.app[app_keys.RECORDING].start(participant_of(principal), principal,
                                                        body.session_id)

    async def _recording_stop(self, sid: str, principal: Principal,
                              body: SessionRef) -> dict[str, Any]:
        return await self.app[app_keys.RECORDING].stop(participant_of(principal), principal,
                                                       body.session_id)

    async def _capture_request(self, sid: str, principal: Principal,
                               body: CaptureRequest) -> dict[str, Any]:
        """Pass the clerk's request to the citizen's page, which uploads the still itself
        (``POST /api/cases/{id}/documents`` with ``request_id`` as its Idempotency-Key).
        Not numbered for replay: a request the page missed is covered by the console's
        fallback to a stream snapshot, and an old one must not fire after a reload."""
        other = await self.queue.party_of(participant_of(principal), body.session_id)
        request_id = new_id("cap")
        await self.queue.notifier.send(other, "capture.request", {
            "session_id": body.session_id, "slot": body.slot, "request_id": request_id})
        return {"request_id": request_id}

    async def _run(self, sid: str, event: str, data: Any) -> dict[str, Any]:
        principal = self._principals.get(sid)
        key = participant_of(principal) if principal else ""
        sids = self._sockets.get(key, [])
        if sids and (sids[-1] != sid or key in self._elsewhere):
            return error_ack(Forbidden("此窗口已在别处打开，当前窗口不可操作",
                                       "this console is open in another tab",
                                       code="inactive_tab"))
        return await super()._run(sid, event, data)

    async def connected(self, sid: str, principal: Principal) -> None:
        key = participant_of(principal)
        for older in self._sockets.get(key, []):
            await self._deactivate(older, key)
        self._elsewhere.discard(key)
        await super().connected(sid, principal)
        await self._tell_tab(key, "opened")
        await self.enter_room(sid, SocketNotifier.CLERKS_ROOM)
        state = await self.queue.clerk_online(principal)
        await self.emit("presence", {"state": state["state"], "reason": "connected"}, to=sid)

    async def disconnected(self, sid: str, principal: Principal) -> None:
        key = participant_of(principal)
        sids = self._sockets.get(key, [])
        was_active = bool(sids) and sids[-1] == sid
        await super().disconnected(sid, principal)
        remaining = self._sockets.get(key, [])
        elsewhere = key in self._elsewhere
        if not remaining:
            self._elsewhere.discard(key)
        if was_active and not elsewhere:
            if remaining:
                await self._activate(remaining[-1], key)
            else:
                await self._tell_tab(key, "closed")

    async def tab_elsewhere(self, key: str, what: str) -> None:
        """Another node says a tab of this clerk opened there (every tab here goes
        inactive) or that their active tab there closed with none left there (the newest
        here becomes active). Two tabs opened on two nodes at the same instant may both
        end inactive; reloading one makes it active."""
        sids = self._sockets.get(key, [])
        if what == "opened" and sids:
            if key not in self._elsewhere:
                await self._deactivate(sids[-1], key)
            self._elsewhere.add(key)
        elif what == "closed" and key in self._elsewhere:
            self._elsewhere.discard(key)
            if sids:
                await self._activate(sids[-1], key)

    async def _deactivate(self, sid: str, key: str) -> None:
        """A newer tab of the clerk opened: this one is told and hears nothing more."""
        await self.emit("tab.inactive", {"reason": "opened_elsewhere"}, to=sid)
        await self.leave_room(sid, key)

    async def _activate(self, sid: str, key: str) -> None:
        """The active tab closed: this one, the newest left, takes over."""
        await self.enter_room(sid, key)
        await self.emit("tab.active", {"reason": "other_tab_closed"}, to=sid)

    async def _tell_tab(self, key: str, what: str) -> None:
        nodes = self.app.get(app_keys.NODES)
        if nodes is not None:
            await nodes.announce_tab(key, what)

    async def participant_gone(self, key: str) -> None:
        await self.queue.clerk_offline(key.removeprefix("clerk:"))

    def _audit(self, principal: Principal, action: str, object_id: str | None,
               detail: dict[str, Any] | None = None) -> None:
        self.journal.audit(actor=principal.subject, role=principal.role, action=action,
                           object_type="queue", object_id=object_id, outcome="success",
                           detail=detail)

    @staticmethod
    def _clerk_id(principal: Principal) -> str:
        return principal.subject.removeprefix("clerk:")

    async def _presence(self, sid: str, principal: Principal,
                        body: PresenceSet) -> dict[str, Any]:
        result = await self.queue.set_presence(self._clerk_id(principal), body.state)
        self._audit(principal, "presence.set", None, {"state": body.state})
        return result

    async def _accept(self, sid: str, principal: Principal, body: OfferReply) -> dict[str, Any]:
        started = await self.queue.accept(self._clerk_id(principal), body.offer_id)
        self._audit(principal, "offer.accept", body.offer_id)
        return {"session": started}

    async def _decline(self, sid: str, principal: Principal, body: OfferDecline) -> None:
        await self.queue.decline(self._clerk_id(principal), body.offer_id)
        self._audit(principal, "offer.decline", body.offer_id, {"reason": body.reason})

    async def _resume(self, sid: str, principal: Principal, body: Resume) -> dict[str, Any]:
        return await self.queue.resume(participant_of(principal), body.last_seq)

    async def _connected(self, sid: str, principal: Principal,
                         body: SessionRef) -> dict[str, Any]:
        return await self.queue.connected(participant_of(principal), body.session_id)

    async def _end(self, sid: str, principal: Principal, body: SessionEnd) -> None:
        await self.queue.end(self._clerk_id(principal), body.session_id, body.outcome,
                             body.reason)
        self._audit(principal, "session.end", body.session_id,
                    {"outcome": body.outcome, "reason": body.reason})

    async def _wrapup_done(self, sid: str, principal: Principal, body: Any) -> dict[str, Any]:
        return await self.queue.wrapup_done(self._clerk_id(principal))

    async def _overview(self, sid: str, principal: Principal, body: Any) -> dict[str, Any]:
        return {"queues": await self.queue.overview()}


class SupervisorNamespace(RoleNamespace):
    events = SUPERVISOR_EVENTS

    def __init__(self, app: web.Application, queue: QueueService, journal: Journal) -> None:
        super().__init__(app, "/supervisor", NAMESPACE_ROLES["/supervisor"])
        self.queue = queue
        self.journal = journal
        self.handle("queue.pause", self._pause)
        self.handle("queue.resume", self._resume_queue)
        self.handle("ticket.move", self._move)
        self.handle("ticket.assign", self._assign)
        self.handle("dashboard", self._dashboard)

    async def connected(self, sid: str, principal: Principal) -> None:
        await self.enter_room(sid, SocketNotifier.SUPERVISORS_ROOM)

    def _audit(self, principal: Principal, action: str, object_id: str,
               detail: dict[str, Any] | None = None) -> None:
        self.journal.audit(actor=principal.subject, role=principal.role, action=action,
                           object_type="queue", object_id=object_id, outcome="success",
                           detail=detail)

    async def _pause(self, sid: str, principal: Principal, body: MatterRef) -> None:
        await self.queue.pause(body.matter, True)
        self._audit(principal, "queue.pause", body.matter)

    async def _resume_queue(self, sid: str, principal: Principal, body: MatterRef) -> None:
        await self.queue.pause(body.matter, False)
        self._audit(principal, "queue.resume", body.matter)

    async def _move(self, sid: str, principal: Principal, body: TicketMove) -> None:
        await self.queue.move(body.ticket_id, body.to)
        self._audit(principal, "ticket.move", body.ticket_id, {"to": body.to})

    async def _assign(self, sid: str, principal: Principal, body: TicketAssign) -> None:
        await self.queue.assign(body.ticket_id, body.clerk)
        self._audit(principal, "ticket.assign", body.ticket_id, {"clerk": body.clerk})

    async def _dashboard(self, sid: str, principal: Principal, body: Any) -> dict[str, Any]:
        return await self.queue.dashboard()
