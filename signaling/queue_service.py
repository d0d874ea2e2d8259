"""The queue's shell: the pure dispatcher and the presence and session machines wired
to a state store, timers, a notifier and a journal.

Every change runs under the store's lock, so decisions are serial, on one node and (with
the Redis store's lease) across nodes; even where leases overlap, the store's atomic
``claim_offer`` keeps a ticket to one clerk and a clerk to one offer. After any change
that can free a clerk or add a ticket, :meth:`_dispatch` runs the pure ``match`` on a
fresh snapshot. Position updates are coalesced and go only to citizens whose place or
estimate changed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import structlog

from server.catalogue import KioskConfig
from server.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    XiaowuError,
)
from server.principals import Principal
from signaling.case_hooks import CaseHooks
from signaling.dispatcher import match, next_escalation_at
from signaling.estimate import HandleTimeAverager
from signaling.journal import Journal
from signaling.media_signaling import (
    NEGOTIATED_EVENTS,
    AnsweringEndpoint,
    Forward,
    MediaNode,
    MediaNodeUnreachable,
    negotiate,
    role_of,
)
from signaling.notifier import Notifier
from signaling.presence import MissReason, PresenceState
from signaling.protocol import QueueJoin
from signaling.queue_views import QueueViews
from signaling.sessions import Outcome, Session, SessionState
from signaling.store import ClerkRecord, QueueStore, TicketRecord
from signaling.tickets import Channel, Priority, Ticket, build_pools
from signaling.timers import Timers

log = structlog.get_logger("xiaowu.queue")
Online = Callable[[str], Awaitable[bool]]
Announce = Callable[[list[str], list[tuple[str, float]]], Awaitable[None]]
"""Tells the other nodes that the queue changed: tickets whose last pushed position they
must forget, and the handle times (matter, seconds) of sessions completed here since."""
P = PresenceState
S = SessionState
_EARLY_S = 0.05
"""How early (wall clock against the event loop's clock) a wrap-up timer may fire and
still end the wrap-up it was set for."""


@dataclass(frozen=True)
class QueueTimings:
    offer_timeout: float = 20.0
    wrap_up: float = 30.0
    grace: float = 30.0
    miss_limit: int = 2
    position_debounce: float = 0.3
    dashboard_interval: float = 1.0


def clerk_key(clerk_id: str) -> str:
    return f"clerk:{clerk_id}"


async def _forget(sent: Awaitable[bool]) -> None:
    """Ending media on a node that is gone needs nothing more."""
    await sent


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class QueueService:
    def __init__(self, store: QueueStore, config: KioskConfig, notifier: Notifier,
                 journal: Journal, timings: QueueTimings | None = None,
                 clock: Callable[[], float] = time.time,
                 media: AnsweringEndpoint | None = None,
                 cases: CaseHooks | None = None,
                 node: MediaNode | None = None, forward: Forward | None = None,
                 online: Online | None = None,
                 announce: Announce | None = None) -> None:
        self.store = store
        self.config = config
        self.notifier = notifier
        self.journal = journal
        self.timings = timings or QueueTimings()
        self.clock = clock
        self.media = media
        self.cases = cases
        self.node = node or MediaNode("local", "")
        self.forward = forward
        """Set with several nodes: sends a session's media events to the node holding it."""
        self.online = online
        """Set with several nodes: whether a participant has a socket open on any node."""
        self.announce = announce
        """Set with several nodes: tells the other nodes that the queue changed. Each node
        pushes positions, overviews and dashboards to its own sockets only, so a citizen
        gets each update once, from the node it is connected to, without a round trip
        through the socket.io message queue."""
        self._announce_due = False
        self._forgotten: set[str] = set()  # tickets whose last push the others must forget
        self._observed: list[tuple[str, float]] = []  # handle times the others must fold in
        self.averager = HandleTimeAverager({m.code: m.expected_minutes for m in config.matters})
        self.views = QueueViews(config, self.averager)
        self._lock = store.lock
        self.timers = Timers(self._lock)
        self._sent: dict[str, tuple[int, int | None, str]] = {}
        self._overview: list[dict[str, Any]] | None = None

    async def close(self) -> None:
        await self.timers.close()

    # ---- clerks ------------------------------------------------------------------

    async def clerk_online(self, principal: Principal) -> dict[str, Any]:
        clerk_id = principal.subject.removeprefix("clerk:")
        async with self._lock:
            self.timers.cancel(f"grace:{clerk_key(clerk_id)}")
            record = await self.store.get_clerk(clerk_id)
            skills = frozenset(principal.skills)
            jurisdictions = frozenset(principal.jurisdictions)
            if record is None:
                record = ClerkRecord(clerk_id, principal.display_name, skills, jurisdictions)
            else:
                record = replace(record, display_name=principal.display_name, skills=skills,
                                 jurisdictions=jurisdictions)
            await self.store.put_clerk(record)
            self._arm_wrap_up(record)  # its timer may have died with another node
            self._positions_soon()
            return self.views.clerk(record)

    async def clerk_offline(self, clerk_id: str) -> None:
        """The clerk's last socket closed: a session waits out the grace period; an
        unanswered offer is withdrawn without counting as a miss."""
        async with self._lock:
            record = await self.store.get_clerk(clerk_id)
            if record is None:
                return
            if record.session_id is not None:
                self.timers.schedule(f"grace:{clerk_key(clerk_id)}", self.timings.grace,
                                     lambda: self._clerk_lost(clerk_id))
                return
            if await self._back_elsewhere(clerk_key(clerk_id)):
                # A console on another node (the browser reconnected there before this
                # node noticed the old socket was gone): the clerk is still at work.
                return
            if record.offer_id is not None:
                await self._withdraw_offer(record.offer_id, "clerk_disconnected")
                record = await self._clerk(clerk_id)
            if record.state is not P.OFFLINE:
                await self._move(record, P.OFFLINE, "disconnected")
            await self._dispatch()  # a withdrawn offer's ticket goes to someone else

    async def set_presence(self, clerk_id: str, state: str) -> dict[str, Any]:
        async with self._lock:
            record = await self._clerk(clerk_id)
            wanted = P(state)
            if record.offer_id is not None or record.session_id is not None:
                # Only accept/decline/timeout and the session's end move a clerk on from
                # an offer or a call; a plain state change would orphan them.
                raise InvalidTransition(
                    "请先处理当前的呼叫或服务", "answer the offer or end the session first",
                    detail={"current": str(record.state), "requested": state})
            if record.state is not wanted:
                if record.state is P.WRAP_UP:
                    self.timers.cancel(f"wrapup:{clerk_id}")
                record = await self._move(record, wanted, "clerk")
            if wanted is P.AVAILABLE:
                await self._dispatch()
            return self.views.clerk(record)

    async def wrapup_done(self, clerk_id: str) -> dict[str, Any]:
        async with self._lock:
            record = await self._clerk(clerk_id)
            if record.state is not P.WRAP_UP:
                raise Conflict("当前不在整理状态", "not in wrap-up", code="not_in_wrap_up")
            await self._end_wrap_up(clerk_id, "clerk_ended_wrap_up")
            return self.views.clerk(await self._clerk(clerk_id))

    async def _end_wrap_up(self, clerk_id: str, reason: str, *, due: bool = False) -> None:
        """End the clerk's wrap-up (``due``: only if its time is up, for timers; a timer
        of an earlier wrap-up, left on another node, must not cut a later one short)."""
        self.timers.cancel(f"wrapup:{clerk_id}")
        record = await self._clerk(clerk_id)
        if record.state is not P.WRAP_UP:
            return
        until = record.wrap_up_until
        if due and until is not None and until > self.clock() + _EARLY_S:
            self._arm_wrap_up(record)
            return
        await self._move(record, P.AVAILABLE, reason)
        await self._dispatch()

    def _arm_wrap_up(self, record: ClerkRecord) -> None:
        """Set this node's timer for a timed wrap-up (another node's may be gone)."""
        if record.state is not P.WRAP_UP or record.wrap_up_until is None:
            return
        clerk_id = record.id
        self.timers.schedule(f"wrapup:{clerk_id}", record.wrap_up_until - self.clock(),
                             lambda: self._end_wrap_up(clerk_id, "wrap_up_elapsed", due=True))

    async def _clerk(self, clerk_id: str) -> ClerkRecord:
        record = await self.store.get_clerk(clerk_id)
        if record is None:
            raise NotFound("工作人员不在线", f"clerk {clerk_id} is not connected",
                           code="clerk_not_online")
        return record

    async def _move(self, record: ClerkRecord, new: PresenceState, reason: str,
                    *, miss: MissReason | None = None, tell: bool = True,
                    store: bool = True, **changes: Any) -> ClerkRecord:
        """The one place a clerk's presence changes: validate, persist, log, tell them.

        ``tell=False`` when the caller's own event to the clerk (``session.started``,
        ``session.ended``) carries the new state as ``presence``: one message instead of
        two for every step of a call (docs/protocol.md, the clerk's `presence` event).
        ``store=False`` when the caller moves the clerk on at once and stores that."""
        presence = record.presence(self.timings.miss_limit)
        now = self.clock()
        event = (presence.miss(miss, now=now) if miss is not None
                 else presence.transition(new, reason=reason, now=now))
        if event.new is not P.WRAP_UP:
            changes.setdefault("wrap_up_until", None)
        record = replace(record.with_presence(presence), **changes)
        if store:
            await self.store.put_clerk(record)
        self.journal.presence(event)
        log.info("clerk.presence", clerk=record.id, transition=f"{event.old} -> {event.new}",
                 reason=event.reason)
        if tell:
            await self.notifier.send(clerk_key(record.id), "presence",
                                     {"state": str(record.state), "reason": event.reason})
        return record

    # ---- citizens ----------------------------------------------------------------

    async def join(self, owner: str, principal: Principal, body: QueueJoin) -> dict[str, Any]:
        async with self._lock:
            existing = await self.store.ticket_of(owner)
            if existing is not None:
                if existing.ticket.matter != body.matter:
                    raise Conflict("您已在排队中", "already queued for another matter",
                                   code="already_queued",
                                   detail={"ticket_id": existing.ticket.id})
                return await self._ticket_view(existing)
            record = self._new_ticket(owner, principal, body)
            await self.store.add_ticket(record)
            self.journal.ticket_opened(record)
            log.info("ticket.open", ticket=record.ticket.id, matter=record.ticket.matter,
                     owner=owner, priority=str(record.ticket.priority))
            await self._dispatch(answering=owner)
            current = await self.store.get_ticket(record.ticket.id)
            return await self._ticket_view(current or record)

    def _new_ticket(self, owner: str, principal: Principal, body: QueueJoin) -> TicketRecord:
        try:
            matter = self.config.matter(body.matter)
        except KeyError:
            raise NotFound("没有该事项", f"no matter {body.matter!r}",
                           code="matter_unknown") from None
        if principal.role == "kiosk":
            assert principal.hut_id is not None
            hut = self.config.hut(principal.hut_id)
            if not hut.allows(matter.code):
                raise Forbidden("本晓屋不办理该事项", "this hut does not offer the matter",
                                code="matter_not_offered")
            region, channel = hut.region, Channel.KIOSK
        else:
            region = body.region or self.config.region_chain(self.config.regions[0].code)[-1].code
            channel = Channel.MOBILE
        try:
            chain = [(r.code, str(r.level)) for r in self.config.region_chain(region)]
        except KeyError:
            raise BadRequest("未知的行政区划", f"unknown region {region!r}",
                             code="unknown_region") from None
        pools = build_pools(chain, [str(level) for level in matter.levels],
                            self.config.partner_codes)
        ticket = Ticket(
            id=new_id("t"), matter=matter.code, category=matter.category, channel=channel,
            priority=Priority(body.priority), created_at=self.clock(),
            escalation_seconds=float(matter.escalation_seconds), pools=pools,
            hut_id=principal.hut_id,
        )
        return TicketRecord(ticket=ticket, owner=owner, region=region)

    async def leave(self, owner: str, reason: str = "left") -> bool:
        async with self._lock:
            return await self._drop_ticket(owner, reason)

    async def citizen_online(self, owner: str) -> None:
        """A citizen's socket is back: their place is kept (replay needs ``resume``)."""
        async with self._lock:
            self.timers.cancel(f"grace:{owner}")

    async def citizen_offline(self, owner: str) -> None:
        async with self._lock:
            if await self.store.ticket_of(owner) is not None:
                self.timers.schedule(f"grace:{owner}", self.timings.grace,
                                     lambda: self._citizen_lost(owner))

    def _forget_later(self, owner: str) -> None:
        """A citizen's replay log outlives their ticket by one grace period (a page that
        drops as the session ends still gets ``session.ended``), then goes: every mobile
        citizen served is a new participant, and the logs would grow all day."""

        async def forget() -> None:
            if await self.store.ticket_of(owner) is None:
                await self.store.reset_events(owner)

        self.timers.schedule(f"forget:{owner}", self.timings.grace, forget)

    async def _back_elsewhere(self, participant: str) -> bool:
        """Whether a participant whose grace period ran out, or whose last socket closed,
        on this node has a socket open on another one (which cannot cancel this node's
        timer)."""
        if self.online is None or not await self.online(participant):
            return False
        log.info("grace.back_on_another_node", participant=participant)
        return True

    async def _citizen_lost(self, owner: str) -> None:
        if not await self._back_elsewhere(owner):
            await self._drop_ticket(owner, "citizen_lost")

    async def participant_lost_with_node(self, participant: str) -> None:
        """A participant whose sockets were all on a node that died (or restarted) and who
        has not come back elsewhere: disconnected as of now, on this node."""
        if participant.startswith("clerk:"):
            await self.clerk_offline(participant.removeprefix("clerk:"))
        else:
            await self.citizen_offline(participant)

    async def _drop_ticket(self, owner: str, reason: str) -> bool:
        record = await self.store.ticket_of(owner)
        if record is None:
            return False
        self.timers.cancel(f"grace:{owner}")
        if record.session_id is not None:
            session = await self.store.get_session(record.session_id)
            if session is not None and session.state is S.OFFERED:
                await self._withdraw_offer(session.session_id, reason)
            elif session is not None:
                await self._end_session(session, Outcome.ABANDONED, reason)
                return True
        await self.store.remove_ticket(record.ticket.id)
        self._forget_sent(record.ticket.id)
        self.journal.ticket_closed(record.ticket.id, reason, self.clock())
        self._forget_later(record.owner)
        log.info("ticket.close", ticket=record.ticket.id, reason=reason)
        await self._dispatch()
        return True

    async def _ticket_view(self, record: TicketRecord) -> dict[str, Any]:
        tickets = await self.store.tickets()
        clerks = await self.store.clerks()
        paused = await self.store.paused()
        return self.views.ticket(record, tickets, clerks, paused, self.clock())

    # ---- offers and sessions ----------------------------------------------------

    async def _dispatch(self, retries: int = 3, *, answering: str | None = None) -> None:
        """Offer waiting tickets to free clerks. ``answering``: the participant whose
        ``queue.join`` this dispatch runs in; that ack reports an offer made now, so no
        ``queue.update`` is sent to them beside it."""
        now = self.clock()
        clerks = {c.id: c for c in await self.store.clerks()}
        if not any(c.state is P.AVAILABLE and c.offer_id is None for c in clerks.values()):
            # Nobody can take an offer: matching and widening wait until someone can
            # (a clerk becoming available dispatches again, with widening as of then).
            self.timers.cancel("escalate")
            self._positions_soon()
            return
        records = {r.ticket.id: r for r in await self.store.tickets()}
        if not any(r.ticket.offered_to is None for r in records.values()):
            # Nobody waits (the usual case when a clerk comes free): nothing to match.
            self.timers.cancel("escalate")
            self._positions_soon()
            return
        offers = match([r.ticket for r in records.values()],
                       [c.snapshot() for c in clerks.values()], now,
                       await self.store.paused(), offer_timeout=self.timings.offer_timeout)
        claimed = [await self._offer(records[offer.ticket_id], clerks[offer.clerk_id], now,
                                     tell_owner=records[offer.ticket_id].owner != answering)
                   for offer in offers]
        if not all(claimed) and retries > 0:
            # Another node changed a ticket or clerk since the snapshot (leases overlapped):
            # match again on fresh state, or a free clerk could wait for the next event.
            await self._dispatch(retries - 1, answering=answering)
            return
        self._schedule_escalation(list(records.values()), now)
        self._positions_soon()

    async def _offer(self, record: TicketRecord, clerk: ClerkRecord, now: float, *,
                     tell_owner: bool = True) -> bool:
        ticket = record.ticket
        session = Session(new_id("s"), ticket_id=ticket.id, clerk_id=clerk.id,
                          ticket_created_at=ticket.created_at, offered_at=now,
                          media_node=self.node.id)  # this node holds the offer's timer
        presence = clerk.presence(self.timings.miss_limit)
        event = presence.transition(P.OFFERED, reason="offer", now=now)
        offered = replace(clerk.with_presence(presence), offer_id=session.session_id)
        if not await self.store.claim_offer(ticket.id, offered, session):
            return False  # another node took the ticket or the clerk first
        self.journal.presence(event)
        self.journal.session(session, None, ticket.matter)
        log.info("offer.made", session=session.session_id, ticket=ticket.id, clerk=clerk.id)
        await self.notifier.send(clerk_key(clerk.id), "offer", {
            **self.views.offer(session, record, now, self.timings.offer_timeout),
            "presence": str(P.OFFERED)})
        if tell_owner:
            await self.notifier.send(record.owner, "queue.update",
                                     {"ticket_id": ticket.id, "state": "offered"})
        self._forget_sent(ticket.id)
        sid = session.session_id
        self.timers.schedule(f"offer:{sid}", self.timings.offer_timeout,
                             lambda: self._offer_missed(sid, MissReason.TIMEOUT))
        return True

    async def _owned_session(self, clerk_id: str, session_id: str) -> Session:
        session = await self.store.get_session(session_id)
        if session is None or session.state is S.ENDED:
            raise NotFound("该服务已结束", "no such open offer or session",
                           code="session_gone")
        if session.clerk_id != clerk_id:
            raise Forbidden("这不是您的服务", "the offer or session is another clerk's",
                            code="not_assigned")
        return session

    async def accept(self, clerk_id: str, offer_id: str) -> dict[str, Any]:
        async with self._lock:
            session = await self._owned_session(clerk_id, offer_id)
            if session.state is not S.OFFERED:
                raise Conflict("已接受", "offer already accepted", code="offer_gone")
            self.timers.cancel(f"offer:{offer_id}")
            now = self.clock()
            record = await self._ticket_of_session(session)
            session.media_node = self.node.id  # the accepting clerk's node holds the media
            for state, reason in ((S.ACCEPTED, "accepted"), (S.CONNECTING, "signaling")):
                event = session.transition(state, reason=reason, now=now)
                self.journal.session(session, event, record.ticket.matter)
            await self.store.put_session(session)
            clerk = await self._move(await self._clerk(clerk_id), P.BUSY, "accepted",
                                     tell=False, offer_id=None,
                                     session_id=session.session_id)
            self._forget_sent(record.ticket.id)
            started = self.views.session_started(session, record, clerk)
            if self.media is not None:
                started["media_node"] = self.node.view()
            # a new session: both sides' numbering starts again at 1
            await self._send_numbered_all([
                (clerk_key(clerk_id), "session.started",
                 {**started, "role": "clerk", "presence": str(P.BUSY)}),
                (record.owner, "session.started", {**started, "role": "citizen"})], fresh=True)
            if self.cases is not None:
                ticket = record.ticket
                self.timers.background(f"case-open:{offer_id}", partial(
                    self.cases.session_accepted, session_id=offer_id, ticket_id=ticket.id,
                    matter=ticket.matter, channel=str(ticket.channel), hut_id=ticket.hut_id,
                    owner=record.owner, clerk_id=clerk_id))
            self._positions_soon()
            return started

    async def decline(self, clerk_id: str, offer_id: str) -> None:
        async with self._lock:
            session = await self._owned_session(clerk_id, offer_id)
            if session.state is not S.OFFERED:
                raise Conflict("已接受", "offer already accepted", code="offer_gone")
            await self._offer_missed(offer_id, MissReason.DECLINED)

    async def _offer_missed(self, offer_id: str, reason: MissReason) -> None:
        session = await self.store.get_session(offer_id)
        if session is None or session.state is not S.OFFERED:
            return
        self.timers.cancel(f"offer:{offer_id}")
        record = await self._close_offer(session, str(reason))
        clerk = await self._clerk(session.clerk_id)
        missed = clerk.missed | {record.ticket.id} if record is not None else clerk.missed
        await self._move(clerk, P.AVAILABLE, str(reason), miss=reason, offer_id=None,
                         missed=missed)
        await self.notifier.send(clerk_key(clerk.id), "offer.withdrawn",
                                 {"offer_id": offer_id, "reason": str(reason)})
        await self._dispatch()

    async def _withdraw_offer(self, offer_id: str, reason: str) -> None:
        """End an unanswered offer for a reason that is not the clerk's (no miss)."""
        session = await self.store.get_session(offer_id)
        if session is None or session.state is not S.OFFERED:
            return
        self.timers.cancel(f"offer:{offer_id}")
        await self._close_offer(session, reason)
        clerk = await self.store.get_clerk(session.clerk_id)
        if clerk is not None and clerk.offer_id == offer_id:
            await self._move(clerk, P.AVAILABLE, "offer_withdrawn", offer_id=None)
            await self.notifier.send(clerk_key(clerk.id), "offer.withdrawn",
                                     {"offer_id": offer_id, "reason": reason})

    async def _close_offer(self, session: Session, reason: str) -> TicketRecord | None:
        record = await self.store.get_ticket(session.ticket_id)
        event = session.transition(S.ENDED, reason=reason, now=self.clock(),
                                   outcome=Outcome.ABANDONED)
        self.journal.session(session, event, record.ticket.matter if record else "")
        await self.store.remove_session(session.session_id)
        if record is not None:
            record = replace(record, ticket=replace(record.ticket, offered_to=None),
                             session_id=None)
            await self.store.put_ticket(record)
        return record

    async def _ticket_of_session(self, session: Session) -> TicketRecord:
        record = await self.store.get_ticket(session.ticket_id)
        if record is None:
            raise NotFound("该服务已结束", "the ticket is gone", code="session_gone")
        return record

    async def connected(self, participant: str, session_id: str) -> dict[str, Any]:
        """A participant reports media flowing: the session becomes active."""
        async with self._lock:
            session, _ = await self._participant_session(participant, session_id)
            if session.state is S.CONNECTING:
                record = await self._ticket_of_session(session)
                event = session.transition(S.ACTIVE, reason="media", now=self.clock())
                self.journal.session(session, event, record.ticket.matter)
                await self.store.put_session(session)
                await self._send_numbered_all([
                    (party, "session.state", {"session_id": session_id, "state": "active"})
                    for party in (clerk_key(session.clerk_id), record.owner)])
            return {"session_id": session_id, "state": str(session.state)}

    async def end(self, clerk_id: str, session_id: str, outcome: str, reason: str) -> None:
        async with self._lock:
            session = await self._owned_session(clerk_id, session_id)
            if session.state is S.OFFERED:
                raise Conflict("尚未接受", "offer not accepted yet", code="not_accepted")
            await self._end_session(session, Outcome(outcome), reason or "clerk_ended")

    async def _end_session(self, session: Session, outcome: Outcome, reason: str) -> None:
        now = self.clock()
        record = await self._ticket_of_session(session)
        event = session.transition(S.ENDED, reason=reason, now=now, outcome=outcome)
        self.journal.session(session, event, record.ticket.matter)
        await self.store.remove_session(session.session_id)
        self._end_media(session)
        await self.store.remove_ticket(record.ticket.id)
        self.journal.ticket_closed(record.ticket.id, f"session_{outcome}", now)
        self._forget_later(record.owner)
        if outcome is Outcome.COMPLETED and session.handle_seconds is not None:
            self.averager.observe(record.ticket.matter, session.handle_seconds)
            if self.announce is not None:  # every node's wait estimates learn from it
                self._observed.append((record.ticket.matter, session.handle_seconds))
        ended = {"session_id": session.session_id, "outcome": str(outcome), "reason": reason}
        if self.cases is not None:
            self.timers.background(f"case-end:{session.session_id}", partial(
                self.cases.session_ended, session_id=session.session_id, at=now))
        clerk_ended = {**ended, **await self._after_call(session.clerk_id)}
        parties = ((clerk_key(session.clerk_id), clerk_ended), (record.owner, ended))
        for party, _ in parties:
            self.timers.cancel(f"grace:{party}")
        await self._send_numbered_all([(party, "session.ended", data)
                                       for party, data in parties])
        if clerk_ended.get("presence") == str(P.AVAILABLE):
            await self._dispatch()
        self._positions_soon()

    async def _after_call(self, clerk_id: str) -> dict[str, Any]:
        """Move a busy clerk on after their call: to wrap-up (ended by a timer or by
        ``wrapup.done``), or straight to available when wrap-up is configured as zero.
        Returns the ``presence`` (and ``wrap_up_s``) that ``session.ended`` tells them."""
        clerk = await self.store.get_clerk(clerk_id)
        if clerk is None or clerk.state is not P.BUSY:
            return {}
        seconds = self.timings.wrap_up
        # with no wrap-up the clerk passes through it under this lock: store only the end
        clerk = await self._move(clerk, P.WRAP_UP, "session_ended", tell=False,
                                 store=seconds > 0, session_id=None,
                                 wrap_up_until=self.clock() + seconds if seconds > 0 else None)
        if seconds <= 0:
            await self._move(clerk, P.AVAILABLE, "wrap_up_elapsed", tell=False)
            return {"presence": str(P.AVAILABLE), "wrap_up_s": 0}
        self._arm_wrap_up(clerk)
        return {"presence": str(P.WRAP_UP), "wrap_up_s": seconds}

    async def _clerk_lost(self, clerk_id: str) -> None:
        """The clerk stayed away past the grace period: the citizen goes back to the head
        of the queue and the session ends as failed."""
        clerk = await self.store.get_clerk(clerk_id)
        if clerk is None or clerk.session_id is None:
            return
        if await self._back_elsewhere(clerk_key(clerk_id)):
            return
        session = await self.store.get_session(clerk.session_id)
        if session is not None and session.state is not S.ENDED:
            await self._requeue(session, "clerk_lost", [])
        await self._move(await self._clerk(clerk_id), P.OFFLINE, "clerk_lost", session_id=None)
        await self._dispatch()

    async def _requeue(self, session: Session, reason: str, also_tell: list[str]) -> None:
        """End a session as failed through no fault of the citizen: the ticket goes back
        to the head of the queue (its case stays open for the next clerk)."""
        record = await self._ticket_of_session(session)
        now = self.clock()
        event = session.transition(S.ENDED, reason=reason, now=now, outcome=Outcome.FAILED)
        self.journal.session(session, event, record.ticket.matter)
        await self.store.remove_session(session.session_id)
        self._end_media(session)
        requeued = replace(record, session_id=None, ticket=replace(
            record.ticket, offered_to=None, requeued_at_head=True))
        await self.store.put_ticket(requeued)
        if self.cases is not None:
            self.timers.background(f"case-end:{session.session_id}", partial(
                self.cases.session_ended, session_id=session.session_id, at=now))
        ended = {"session_id": session.session_id, "outcome": str(Outcome.FAILED),
                 "reason": reason, "requeued": True}
        await self._send_numbered_all([(party, "session.ended", ended)
                                       for party in (record.owner, *also_tell)])
        self._forget_sent(record.ticket.id)

    async def node_lost(self, node_id: str) -> int:
        """A node died (its heartbeat expired) or restarted: the sessions whose media or
        offer timer it held end as failed with ``node_lost``; each ticket goes back to the
        head of the queue and both participants are told. Returns how many ended."""
        ended = 0
        async with self._lock:
            for clerk in await self.store.clerks():
                self._arm_wrap_up(clerk)  # its timer may have been the dead node's
                session_id = clerk.session_id or clerk.offer_id
                session = await self.store.get_session(session_id) if session_id else None
                if session is None or session.media_node != node_id:
                    continue
                ended += 1
                if session.state is S.OFFERED:
                    await self._withdraw_offer(session.session_id, "node_lost")
                    continue
                if session.state is S.ENDED:
                    continue
                await self._requeue(session, "node_lost", [clerk_key(clerk.id)])
                self.timers.cancel(f"grace:{clerk_key(clerk.id)}")
                if clerk.state is P.BUSY:
                    await self._move(await self._clerk(clerk.id), P.AVAILABLE, "node_lost",
                                     session_id=None)
            if ended:
                log.warning("node.lost", node=node_id, sessions=ended)
                await self._dispatch()
        return ended

    # ---- signaling relay and resume -------------------------------------------------

    async def _participant_session(self, participant: str,
                                   session_id: str) -> tuple[Session, str]:
        """The session and the other party, if ``participant`` is in it."""
        session = await self.store.get_session(session_id)
        refused = Forbidden("您不在该会话中", "not a participant of this session",
                            code="not_in_session")
        if session is None or session.state in (S.OFFERED, S.ENDED):
            raise refused
        record = await self.store.get_ticket(session.ticket_id)
        parties = {clerk_key(session.clerk_id), record.owner if record else ""}
        if participant not in parties:
            raise refused
        (other,) = parties - {participant}
        return session, other

    async def relay(self, participant: str, session_id: str, event: str,
                    data: dict[str, Any]) -> dict[str, Any]:
        """Route a ``webrtc.*`` event: to the server's media (this node's, or forwarded to
        the node the session is pinned to), or (p2p) the other side."""
        async with self._lock:
            session, other = await self._participant_session(participant, session_id)
            if self.media is None:
                await self._send_numbered(other, event, {**data, "from": role_of(participant)})
                return {}
        pinned = session.media_node
        if (event in NEGOTIATED_EVENTS and self.forward is not None and pinned is not None
                and pinned != self.node.id):
            message = {"kind": "negotiate", "session_id": session_id,
                       "participant": participant, "event": event, "data": data}
            if not await self.forward(pinned, message):
                raise MediaNodeUnreachable(pinned)
            return {"forwarded": pinned}  # the answer comes as a webrtc.answer event
        return await self.answer_here(participant, session_id, event, data)

    async def answer_forwarded(self, participant: str, session_id: str, event: str,
                               data: dict[str, Any]) -> None:
        """Another node forwarded a participant's offer for a session pinned here: answer
        it, or tell the participant why not (``media.failed``: no ack can carry it)."""
        try:
            await self.answer_here(participant, session_id, event, data)
        except XiaowuError as error:
            async with self._lock:
                await self._send_numbered(participant, "media.failed", {
                    "session_id": session_id, "code": error.code, "message": error.message})

    async def answer_here(self, participant: str, session_id: str, event: str,
                          data: dict[str, Any]) -> dict[str, Any]:
        assert self.media is not None
        # Negotiation gathers ICE candidates: never under the queue's lock.
        answer = await negotiate(self.media, session_id, participant, event, data)
        if answer is None:
            return {"ignored": event == "webrtc.candidate"}
        async with self._lock:
            await self._participant_session(participant, session_id)
            await self._send_numbered(participant, "webrtc.answer", answer)
        return {}

    async def party_of(self, participant: str, session_id: str) -> str:
        """The other party of the live session ``participant`` is in (``not_in_session``
        otherwise)."""
        async with self._lock:
            _, other = await self._participant_session(participant, session_id)
        return other

    async def tell(self, participant: str, event: str, data: dict[str, Any]) -> None:
        """Send a numbered session event (replayed after a reconnect)."""
        async with self._lock:
            await self._send_numbered(participant, event, data)

    async def media_failed(self, session_id: str, role: str, code: str, message: str) -> None:
        """A participant's media leg failed: tell them, so the page offers again."""
        async with self._lock:
            session = await self.store.get_session(session_id)
            if session is None or session.state is S.ENDED:
                return
            record = await self.store.get_ticket(session.ticket_id)
            party = clerk_key(session.clerk_id) if role == "clerk" else (
                record.owner if record else None)
            if party is not None:
                await self._send_numbered(party, "media.failed", {
                    "session_id": session_id, "code": code, "message": message})

    def _end_media(self, session: Session) -> None:
        media, forward, session_id = self.media, self.forward, session.session_id
        pinned = session.media_node
        if forward is not None and pinned is not None and pinned != self.node.id:
            message = {"kind": "end", "session_id": session_id}
            self.timers.background(f"media-end:{session_id}",
                                   lambda: _forget(forward(pinned, message)))
        elif media is not None:
            self.timers.background(f"media-end:{session_id}", lambda: media.end(session_id))

    async def _send_numbered(self, participant: str, event: str, data: dict[str, Any]) -> None:
        numbered = await self.store.append_event(participant, event, data)
        await self.notifier.send(participant, event, numbered.payload())

    async def _send_numbered_all(self, sends: list[tuple[str, str, dict[str, Any]]], *,
                                 fresh: bool = False) -> None:
        """``_send_numbered`` to several participants, numbered in one store call (a
        Redis round trip each was most of what a session's start and end cost there)."""
        numbered = await self.store.append_events(sends, fresh=fresh)
        for (participant, _, _), each in zip(sends, numbered, strict=True):
            await self.notifier.send(participant, each.event, each.payload())

    async def resume(self, participant: str, last_seq: int) -> dict[str, Any]:
        """A participant is back: cancel its grace timer and replay what it missed."""
        async with self._lock:
            self.timers.cancel(f"grace:{participant}")
            missed = await self.store.events_since(participant, last_seq)
            snapshot = await self._snapshot_for(participant)
            if missed is None:
                return {"resync": True, **snapshot}
            for numbered in missed:
                await self.notifier.send(participant, numbered.event, numbered.payload())
            if "ticket" in snapshot:
                if snapshot["ticket"]:
                    self._forget_sent(snapshot["ticket"]["ticket_id"])
                self._positions_soon()
            return {"replayed": len(missed), **snapshot}

    async def _snapshot_for(self, participant: str) -> dict[str, Any]:
        if participant.startswith("clerk:"):
            clerk = await self.store.get_clerk(participant.removeprefix("clerk:"))
            return self.views.clerk(clerk) if clerk is not None else {}
        record = await self.store.ticket_of(participant)
        return {"ticket": None if record is None else await self._ticket_view(record)}

    # ---- positions, escalation, overview --------------------------------------------

    def _schedule_escalation(self, records: list[TicketRecord], now: float) -> None:
        times = [t for r in records if r.ticket.offered_to is None
                 and (t := next_escalation_at(r.ticket, now)) is not None]
        if times:
            self.timers.schedule("escalate", min(times) - now + 0.001, self._dispatch)
        else:
            self.timers.cancel("escalate")

    def _forget_sent(self, ticket_id: str) -> None:
        """The ticket's citizen was told something else since its last position (an
        offer, a session): the next push sends its position whatever it was before. With
        several nodes the node holding the citizen's socket pushes, so it is told too."""
        self._sent.pop(ticket_id, None)
        if self.announce is not None:
            self._forgotten.add(ticket_id)

    def changed_elsewhere(self, forget: list[str],
                          observed: list[tuple[str, float]] | None = None) -> None:
        """Another node changed the queue: fold in the handle times of the sessions it
        completed and push positions to this node's sockets."""
        for ticket_id in forget:
            self._sent.pop(ticket_id, None)
        for matter, seconds in observed or []:
            try:
                self.averager.observe(matter, seconds)
            except ValueError:
                log.warning("queue.bad_handle_time", matter=matter, seconds=seconds)
        self._positions_soon(announce=False)

    def _positions_soon(self, *, announce: bool = True) -> None:
        """Coalesce: one push of positions per debounce interval, one dashboard per second."""
        self._announce_due |= announce
        if not self.timers.pending("positions"):
            self.timers.schedule("positions", self.timings.position_debounce,
                                 self._push_positions)
        if not self.timers.pending("dashboard"):
            self.timers.schedule("dashboard", self.timings.dashboard_interval,
                                 self._push_dashboard)

    async def _push_positions(self) -> None:
        local = self.announce is not None
        if self.announce is not None and (self._announce_due or self._forgotten
                                          or self._observed):
            forget, self._forgotten, self._announce_due = sorted(self._forgotten), set(), False
            observed, self._observed = self._observed, []
            await self.announce(forget, observed)
        records = await self.store.tickets()
        clerks = await self.store.clerks()
        paused = await self.store.paused()
        for ticket_id, view in self.views.waiting(records, clerks, paused,
                                                  self.clock()).items():
            key = (view["position"], view["estimate_minutes"], view["state"])
            if self._sent.get(ticket_id) != key:
                self._sent[ticket_id] = key
                await self.notifier.send(view.pop("owner"), "queue.update", view, local=local)
        overview = self.views.overview(records, paused)
        if overview != self._overview:
            self._overview = overview
            await self.notifier.all_clerks("queue.overview", {"queues": overview}, local=local)

    async def _push_dashboard(self) -> None:
        dashboard = self.views.dashboard(await self.store.tickets(), await self.store.clerks(),
                                         await self.store.paused(), self.clock())
        await self.notifier.supervisors("dashboard", dashboard, local=self.announce is not None)

    async def overview(self) -> list[dict[str, Any]]:
        async with self._lock:
            return self.views.overview(await self.store.tickets(), await self.store.paused())

    async def dashboard(self) -> dict[str, Any]:
        async with self._lock:
            return self.views.dashboard(await self.store.tickets(), await self.store.clerks(),
                                        await self.store.paused(), self.clock())

    # ---- supervisor controls ----------------------------------------------------------

    async def pause(self, matter: str, paused: bool) -> None:
        async with self._lock:
            try:
                self.config.matter(matter)
            except KeyError:
                raise NotFound("没有该事项", f"no matter {matter!r}",
                               code="matter_unknown") from None
            await self.store.set_paused(matter, paused)
            await self._dispatch()

    async def move(self, ticket_id: str, to: str) -> None:
        async with self._lock:
            record = await self._waiting_ticket(ticket_id)
            ticket = (replace(record.ticket, requeued_at_head=True) if to == "head"
                      else replace(record.ticket, requeued_at_head=False,
                                   created_at=self.clock()))
            await self.store.put_ticket(replace(record, ticket=ticket))
            await self._dispatch()

    async def assign(self, ticket_id: str, clerk_id: str) -> None:
        async with self._lock:
            record = await self._waiting_ticket(ticket_id, allow_offered=True)
            await self._clerk(clerk_id)
            if record.session_id is not None:
                await self._withdraw_offer(record.session_id, "reassigned")
                record = await self._waiting_ticket(ticket_id)
            await self.store.put_ticket(replace(
                record, ticket=replace(record.ticket, assigned_clerk=clerk_id)))
            await self._dispatch()

    async def _waiting_ticket(self, ticket_id: str, *,
                              allow_offered: bool = False) -> TicketRecord:
        record = await self.store.get_ticket(ticket_id)
        if record is None:
            raise NotFound("没有该排队号", f"no ticket {ticket_id}", code="ticket_unknown")
        if record.session_id is not None:
            session = await self.store.get_session(record.session_id)
            if not (allow_offered and session is not None and session.state is S.OFFERED):
                raise Conflict("该市民已在办理中", "the ticket is already being served",
                               code="ticket_in_session")
        return record
