"""The state store contract. Every store implementation runs this same suite: the
in-memory store of one node and the Redis store of several (a fresh key prefix per
test on the Redis at ``XIAOWU_TEST_REDIS_URL``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from signaling.memory_store import MemoryStore
from signaling.presence import PresenceState
from signaling.redis_store import RedisStore, connect
from signaling.sessions import Outcome, Session, SessionState
from signaling.store import ClerkRecord, QueueStore, TicketRecord
from signaling.tickets import Channel, Pool, Priority, Ticket


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def redis_target(request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """None for the memory store; the Redis URL and a fresh prefix for the Redis store
    (requested only then, so the memory runs need no Redis)."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def store(redis_target: tuple[str, str] | None) -> AsyncIterator[QueueStore]:
    if redis_target is None:
        yield MemoryStore()
        return
    url, prefix = redis_target
    redis_store = RedisStore(connect(url), prefix)
    yield redis_store
    await redis_store.close()


def _ticket(ticket_id: str, owner: str) -> TicketRecord:
    ticket = Ticket(ticket_id, "EDU-TQ-CONFIRM", "education", Channel.MOBILE,
                    Priority.NORMAL, 1.0, 60.0, (Pool("city", frozenset({"370500"})),))
    return TicketRecord(ticket, owner, "370500")


def _clerk(clerk_id: str, state: PresenceState = PresenceState.AVAILABLE) -> ClerkRecord:
    return ClerkRecord(clerk_id, clerk_id.title(), frozenset({"*"}), frozenset({"370500"}),
                       state=state)


def _session(session_id: str, ticket_id: str, clerk_id: str) -> Session:
    return Session(session_id, ticket_id=ticket_id, clerk_id=clerk_id, ticket_created_at=1.0,
                   offered_at=2.0)


def _offered(clerk: ClerkRecord, session_id: str) -> ClerkRecord:
    return replace(clerk, state=PresenceState.OFFERED, offer_id=session_id)


async def test_tickets_are_kept_by_id_and_by_owner(store: QueueStore) -> None:
    await store.add_ticket(_ticket("t1", "kiosk:a"))
    await store.add_ticket(_ticket("t2", "citizen:b"))
    assert (await store.get_ticket("t1")) == _ticket("t1", "kiosk:a")
    found = await store.ticket_of("citizen:b")
    assert found is not None and found.ticket.id == "t2"
    assert {r.ticket.id for r in await store.tickets()} == {"t1", "t2"}
    with pytest.raises(KeyError):
        await store.add_ticket(_ticket("t1", "kiosk:c"))
    removed = await store.remove_ticket("t1")
    assert removed is not None and removed.owner == "kiosk:a"
    assert await store.ticket_of("kiosk:a") is None
    assert await store.remove_ticket("t1") is None


async def test_claim_offer_succeeds_once_and_sets_every_side(store: QueueStore) -> None:
    await store.add_ticket(_ticket("t1", "kiosk:a"))
    clerk = _clerk("wangli")
    await store.put_clerk(clerk)
    assert await store.claim_offer("t1", _offered(clerk, "s1"), _session("s1", "t1", "wangli"))
    record = await store.get_ticket("t1")
    assert record is not None
    assert (record.ticket.offered_to, record.session_id) == ("wangli", "s1")
    stored = await store.get_clerk("wangli")
    assert stored is not None and (stored.state, stored.offer_id) == (PresenceState.OFFERED,
                                                                       "s1")
    session = await store.get_session("s1")
    assert session is not None and session.ticket_id == "t1"


async def test_claim_offer_refuses_without_changing_anything(store: QueueStore) -> None:
    await store.add_ticket(_ticket("t1", "kiosk:a"))
    await store.add_ticket(_ticket("t2", "kiosk:b"))
    busy = _clerk("busy", PresenceState.BUSY)
    free = _clerk("free")
    await store.put_clerk(busy)
    await store.put_clerk(free)
    # a clerk who is not available
    assert not await store.claim_offer("t1", _offered(busy, "s0"), _session("s0", "t1", "busy"))
    # an unknown ticket
    assert not await store.claim_offer("t9", _offered(free, "s9"), _session("s9", "t9", "free"))
    assert await store.get_session("s0") is None and await store.get_session("s9") is None
    # a ticket already offered, and a clerk already holding an offer
    assert await store.claim_offer("t1", _offered(free, "s1"), _session("s1", "t1", "free"))
    other = _clerk("other")
    await store.put_clerk(other)
    assert not await store.claim_offer("t1", _offered(other, "s2"), _session("s2", "t1", "other"))
    assert not await store.claim_offer("t2", _offered(free, "s3"), _session("s3", "t2", "free"))
    t2 = await store.get_ticket("t2")
    assert t2 is not None and t2.ticket.offered_to is None and t2.session_id is None
    kept = await store.get_clerk("other")
    assert kept is not None and kept.state is PresenceState.AVAILABLE


async def test_racing_claims_give_one_offer_per_ticket_and_per_clerk(store: QueueStore) -> None:
    for i in range(20):
        await store.add_ticket(_ticket(f"t{i}", f"kiosk:{i}"))
    clerks = [_clerk(f"c{j}") for j in range(5)]
    for clerk in clerks:
        await store.put_clerk(clerk)
    attempts = [store.claim_offer(f"t{i}", _offered(c, f"s{i}-{c.id}"),
                                  _session(f"s{i}-{c.id}", f"t{i}", c.id))
                for i in range(20) for c in clerks]
    results = await asyncio.gather(*attempts)
    assert sum(results) == 5  # each clerk got exactly one ticket
    offered = [r for r in await store.tickets() if r.ticket.offered_to is not None]
    assert len(offered) == 5
    assert len({r.ticket.offered_to for r in offered}) == 5


async def test_sessions_and_paused_matters(store: QueueStore) -> None:
    session = _session("s1", "t1", "wangli")
    await store.put_session(session)
    assert (await store.get_session("s1")) is not None
    await store.remove_session("s1")
    assert await store.get_session("s1") is None
    await store.set_paused("EDU-TQ-CONFIRM", True)
    await store.set_paused("PSB-HH-MIGRATE", True)
    await store.set_paused("PSB-HH-MIGRATE", False)
    assert await store.paused() == frozenset({"EDU-TQ-CONFIRM"})


async def test_records_come_back_with_every_field(store: QueueStore) -> None:
    pools = (Pool("township", frozenset({"370502001"})), Pool("county", frozenset({"370502"})),
             Pool("partner", frozenset({"110000", "310000"})))
    ticket = Ticket("t1", "PSB-HH-MIGRATE", "household", Channel.KIOSK, Priority.PRIORITY,
                    1717000000.123456, 90.5, pools, hut_id="dy-hall-01",
                    assigned_clerk="wangli", requeued_at_head=True)
    record = TicketRecord(ticket, "kiosk:kd_1", "370502001")
    await store.add_ticket(record)
    assert await store.get_ticket("t1") == record
    assert await store.ticket_of("kiosk:kd_1") == record
    offered = replace(record, ticket=replace(ticket, offered_to="wangli"), session_id="s1")
    await store.put_ticket(offered)
    assert await store.tickets() == [offered]
    await store.put_ticket(record)
    assert await store.get_ticket("t1") == record

    clerk = ClerkRecord("wangli", "王丽", frozenset({"household", "EDU-TQ-CONFIRM"}),
                        frozenset({"370502", "370500"}), state=PresenceState.BUSY,
                        consecutive_misses=1, idle_since=1717000001.5, sessions_today=7,
                        missed=frozenset({"t0", "t9"}), session_id="s1")
    await store.put_clerk(clerk)
    assert await store.get_clerk("wangli") == clerk
    assert await store.clerks() == [clerk]

    session = _session("s1", "t1", "wangli")
    session.transition(SessionState.ACCEPTED, reason="accepted", now=3.25)
    session.transition(SessionState.CONNECTING, reason="signaling", now=3.25)
    session.transition(SessionState.ACTIVE, reason="media", now=4.0)
    session.transition(SessionState.ENDED, reason="clerk_ended", now=64.0,
                       outcome=Outcome.COMPLETED)
    await store.put_session(session)
    found = await store.get_session("s1")
    assert found is not None
    assert (found.state, found.entered, found.outcome, found.end_reason, found.clerk_id,
            found.ticket_id, found.ticket_created_at) == (
        SessionState.ENDED, session.entered, Outcome.COMPLETED, "clerk_ended", "wangli", "t1",
        1.0)
    assert found.handle_seconds == 60.0


async def test_the_lock_serializes_read_modify_write(store: QueueStore) -> None:
    await store.set_paused("count:0", True)

    async def increment() -> None:
        async with store.lock:
            assert store.lock.locked()
            (current,) = await store.paused()
            await asyncio.sleep(0)
            await store.set_paused(current, False)
            await store.set_paused(f"count:{int(current.split(':')[1]) + 1}", True)

    await asyncio.gather(*(increment() for _ in range(30)))
    assert await store.paused() == frozenset({"count:30"})
    assert not store.lock.locked()


async def test_numbered_events_are_kept_per_participant(store: QueueStore) -> None:
    assert await store.events_since("citizen:a", 0) == []
    first = await store.append_event("citizen:a", "session.started", {"role": "citizen"})
    second = await store.append_event("citizen:a", "webrtc.offer", {"sdp": "v=0\r\nm=x"})
    await store.append_event("clerk:b", "presence", {"state": "busy"})
    assert (first.seq, second.seq) == (1, 2)
    missed = await store.events_since("citizen:a", 1)
    assert missed is not None
    assert [(n.seq, n.event, n.data) for n in missed] == [
        (2, "webrtc.offer", {"sdp": "v=0\r\nm=x"})]
    assert await store.events_since("citizen:a", 2) == []
    await store.reset_events("citizen:a")
    assert (await store.append_event("citizen:a", "session.started", {})).seq == 1
    for i in range(300):  # more than a log keeps: an early resume must resync
        await store.append_event("clerk:b", "webrtc.candidate", {"i": i})
    assert await store.events_since("clerk:b", 0) is None
    latest = await store.events_since("clerk:b", 300)
    assert latest is not None and [n.data for n in latest] == [{"i": 299}]


async def test_events_numbered_together_are_numbered_as_one_by_one(store: QueueStore) -> None:
    await store.append_event("citizen:a", "queue.update", {"n": 1})
    await store.append_event("clerk:b", "presence", {"n": 1})
    await store.append_event("clerk:b", "presence", {"n": 2})
    kept = await store.append_events([("citizen:a", "session.ended", {"x": "中文"}),
                                      ("clerk:b", "session.ended", {"x": 2}),
                                      ("citizen:a", "case.opened", {"x": 3})])
    assert [(n.seq, n.event, n.data) for n in kept] == [
        (2, "session.ended", {"x": "中文"}), (3, "session.ended", {"x": 2}),
        (3, "case.opened", {"x": 3})]
    missed = await store.events_since("citizen:a", 1)
    assert missed is not None and [(n.seq, n.event) for n in missed] == [
        (2, "session.ended"), (3, "case.opened")]
    # fresh: each participant starts again at 1 once, however often it appears
    fresh = await store.append_events([("citizen:a", "session.started", {}),
                                       ("clerk:b", "session.started", {}),
                                       ("citizen:a", "webrtc.offer", {})], fresh=True)
    assert [n.seq for n in fresh] == [1, 1, 2]
    replay = await store.events_since("citizen:a", 0)
    assert replay is not None and [n.event for n in replay] == ["session.started",
                                                                "webrtc.offer"]
    assert await store.append_events([]) == []
