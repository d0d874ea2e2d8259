"""Two nodes on one Redis: two store instances on one key prefix (each with its own
connection, local lock, lease tokens and copy of the state)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from signaling.presence import PresenceState
from signaling.redis_lock import RedisQueueLock
from signaling.redis_store import RedisStore, connect
from tests.unit.test_store_contract import _clerk, _offered, _session, _ticket

pytestmark = pytest.mark.redis


@pytest.fixture
async def nodes(redis_url: str, redis_prefix: str) -> AsyncIterator[list[RedisStore]]:
    stores = [RedisStore(connect(redis_url), redis_prefix, lock_ttl=0.5) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()


async def test_two_nodes_never_hold_the_lock_together(nodes: list[RedisStore]) -> None:
    inside: list[int] = []
    overlaps = 0
    await nodes[0].redis.set(f"{nodes[0].prefix}counter", 0)

    async def increment(node: int) -> None:
        nonlocal overlaps
        store = nodes[node]
        async with store.lock:
            inside.append(node)
            overlaps += len(inside) > 1
            value = int(await store.redis.get(f"{store.prefix}counter") or 0)
            await asyncio.sleep(0.001)
            await store.redis.set(f"{store.prefix}counter", value + 1)
            inside.remove(node)

    await asyncio.gather(*(increment(i % 2) for i in range(60)))
    assert overlaps == 0
    assert int(await nodes[0].redis.get(f"{nodes[0].prefix}counter") or 0) == 60


async def test_a_dead_holders_lease_expires(nodes: list[RedisStore]) -> None:
    dead = RedisQueueLock(nodes[0].redis, nodes[0].prefix, ttl=30.0)
    await dead.__aenter__()  # and never leaves: the node died holding the lease
    with pytest.raises(TimeoutError):  # while the lease runs, nobody else gets in
        await asyncio.wait_for(nodes[1].lock.__aenter__(), 0.1)
    await nodes[0].redis.pexpire(f"{nodes[0].prefix}lock", 20)  # time passes
    async with nodes[1].lock:  # the lease lapsed and the queue goes on
        assert await nodes[1].redis.pttl(f"{nodes[1].prefix}lock") > 0


async def test_a_node_that_releases_queues_behind_one_that_waits(
        nodes: list[RedisStore]) -> None:
    order: list[str] = []
    first = nodes[0].lock
    await first.__aenter__()

    async def other() -> None:
        async with nodes[1].lock:
            order.append("other")

    waiting = asyncio.create_task(other())
    await asyncio.sleep(0.02)  # the other node is now in line
    await first.__aexit__(None, None, None)
    # A second lock object on the first node (its own local lock) asks at once:
    again = RedisQueueLock(nodes[0].redis, nodes[0].prefix)
    async with again:
        order.append("again")
    await waiting
    assert order == ["other", "again"]


async def test_a_cancelled_waiter_leaves_no_place_in_line(nodes: list[RedisStore]) -> None:
    holder = nodes[0].lock
    await holder.__aenter__()
    waiter = asyncio.create_task(nodes[1].lock.__aenter__())
    await asyncio.sleep(0.02)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not nodes[1].lock.locked()
    assert await nodes[0].redis.zcard(f"{nodes[0].prefix}lock:waiters") == 0
    await holder.__aexit__(None, None, None)
    async with nodes[1].lock:  # and nothing is stuck
        pass


async def test_claims_from_two_nodes_at_once_give_one_offer_each(
        nodes: list[RedisStore]) -> None:
    """No lock here: the claim script alone keeps one offer per ticket and per clerk."""
    for i in range(20):
        await nodes[0].add_ticket(_ticket(f"t{i}", f"kiosk:{i}"))
    clerks = [_clerk(f"c{j}") for j in range(5)]
    for clerk in clerks:
        await nodes[1].put_clerk(clerk)
    attempts = [nodes[(i + j) % 2].claim_offer(
        f"t{i}", _offered(c, f"s{i}-{c.id}"), _session(f"s{i}-{c.id}", f"t{i}", c.id))
        for i in range(20) for j, c in enumerate(clerks)]
    assert sum(await asyncio.gather(*attempts)) == 5
    offered = [r for r in await nodes[1].tickets() if r.ticket.offered_to is not None]
    assert sorted(r.ticket.offered_to or "" for r in offered) == [c.id for c in clerks]
    for clerk in await nodes[0].clerks():
        assert clerk.state is PresenceState.OFFERED
        assert clerk.offer_id == next(r.session_id for r in offered
                                      if r.ticket.offered_to == clerk.id)


async def test_a_nodes_copy_follows_the_other_nodes_writes(nodes: list[RedisStore]) -> None:
    a, b = nodes
    async with a.lock:
        await a.add_ticket(_ticket("t1", "kiosk:1"))
        assert [r.ticket.id for r in await a.tickets()] == ["t1"]
    async with a.lock:  # nobody wrote since: the copy is reused
        assert [r.ticket.id for r in await a.tickets()] == ["t1"]
    async with b.lock:
        await b.put_clerk(_clerk("wangli"))
        await b.remove_ticket("t1")
        await b.set_paused("EDU-TQ-CONFIRM", True)
    async with a.lock:
        assert await a.tickets() == [] and await a.ticket_of("kiosk:1") is None
        assert [c.id for c in await a.clerks()] == ["wangli"]
        assert await a.paused() == frozenset({"EDU-TQ-CONFIRM"})
    await b.add_ticket(_ticket("t2", "kiosk:2"))  # a write outside any lease
    async with a.lock:
        found = await a.ticket_of("kiosk:2")
        assert found is not None and found.ticket.id == "t2"
