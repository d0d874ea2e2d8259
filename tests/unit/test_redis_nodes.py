"""Two nodes on one Redis: two store instances on one key prefix (each with its own
connection, local lock, lease tokens and copy of the state)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from signaling.presence import PresenceState
from signaling.redis_lock import RedisQueueLock
from signaling.redis_store import LOG_LENGTH, RedisStore, connect
from signaling.store import ClerkRecord, TicketRecord
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
    for _ in range(500):  # until the other node is in line (a fixed sleep can lose)
        if await nodes[0].redis.zcard(f"{nodes[0].prefix}lock:waiters"):
            break
        await asyncio.sleep(0.01)
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


async def _state(store: RedisStore, owners: list[str]) -> tuple[object, ...]:
    """What the queue sees of the store, read under the lease (from the node's copy)."""
    async with store.lock:
        tickets = sorted((r.ticket.id, r.region, r.ticket.offered_to, r.session_id)
                         for r in await store.tickets())
        owned = [None if (r := await store.ticket_of(o)) is None else r.ticket.id
                 for o in owners]
        clerks = sorted((c.id, c.state.value, c.offer_id) for c in await store.clerks())
        return tickets, owned, clerks, await store.paused()


async def test_a_lease_after_the_other_nodes_writes_reads_only_what_changed(
        nodes: list[RedisStore], redis_url: str) -> None:
    """Nodes taking turns, each writing what the queue writes: every lease after the
    first catches up from the change log, and sees what a node reading everything sees."""
    owners = [f"kiosk:{i}" for i in range(6)]
    rng = random.Random(3)
    await nodes[0].put_clerk(_clerk("c0"))  # the store's first write sets its version
    for node in nodes:
        await _state(node, owners)  # each node's first lease reads everything
    assert [n.full_reads for n in nodes] == [1, 1]
    fresh = RedisStore(connect(redis_url), nodes[0].prefix)
    try:
        for turn in range(40):
            writer = nodes[turn % 2]
            async with writer.lock:
                tickets = {r.ticket.id: r for r in await writer.tickets()}
                clerks = await writer.clerks()
                for _ in range(rng.randrange(1, 4)):
                    await _random_write(writer, rng, turn, tickets, clerks, owners)
            assert await _state(nodes[(turn + 1) % 2], owners) == await _state(fresh, owners)
            fresh = _reopened(fresh)
        assert [n.full_reads for n in nodes] == [1, 1]
        assert min(n.catch_ups for n in nodes) >= 19
    finally:
        await fresh.close()


async def test_what_the_other_node_wrote_comes_with_the_lease(
        nodes: list[RedisStore]) -> None:
    """A lease taken after the other node wrote brings the change log's records with it:
    the copy is up to date with no round trip but the lease's own two (acquire, release)."""
    a, b = nodes
    owners = ["kiosk:1", "kiosk:2"]
    await b.put_clerk(_clerk("c"))  # the store's first write sets its version
    await _state(a, owners)  # a's copy
    sent: list[str] = []
    execute: Callable[..., Awaitable[Any]] = a.redis.execute_command

    async def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]))
        return await execute(*args, **kwargs)

    a.redis.execute_command = counted  # type: ignore[method-assign]
    for turn in range(5):
        async with b.lock:
            await b.add_ticket(_ticket(f"t{turn}", owners[turn % 2]))
            await b.put_clerk(_clerk(f"c{turn}"))
        before = a.catch_ups
        sent.clear()
        assert await _state(a, owners) == await _state(_reopened(b), owners)
        assert a.catch_ups == before + 1
        assert sent == ["EVALSHA", "EVALSHA"]
    assert a.full_reads == 1


def _reopened(store: RedisStore) -> RedisStore:
    """A node with no copy yet (its next lease reads everything), on the same client."""
    return RedisStore(store.redis, store.prefix)


async def _random_write(node: RedisStore, rng: random.Random, turn: int,
                        tickets: dict[str, TicketRecord], clerks: list[ClerkRecord],
                        owners: list[str]) -> None:
    choice = rng.randrange(6)
    if choice == 0 or not tickets:
        ticket = _ticket(f"t{turn}-{rng.randrange(1000)}", rng.choice(owners))
        if ticket.ticket.id not in tickets:
            await node.add_ticket(ticket)  # an owner with a ticket gets a second one
            tickets[ticket.ticket.id] = ticket
    elif choice == 1:
        await node.remove_ticket(tickets.pop(rng.choice(sorted(tickets))).ticket.id)
    elif choice == 2:
        record = tickets[rng.choice(sorted(tickets))]
        await node.put_ticket(replace(record, region=f"region-{turn}"))
    elif choice == 3:
        await node.put_clerk(_clerk(f"c{rng.randrange(4)}"))
    elif choice == 4:
        await node.set_paused(f"MATTER-{rng.randrange(3)}", rng.random() < 0.5)
    else:
        free = [c for c in clerks if c.state is PresenceState.AVAILABLE]
        waiting = sorted(t for t, r in tickets.items() if r.ticket.offered_to is None)
        if free and waiting:
            clerk, ticket_id = rng.choice(free), rng.choice(waiting)
            session = f"s{turn}-{clerk.id}"
            assert await node.claim_offer(ticket_id, _offered(clerk, session),
                                          _session(session, ticket_id, clerk.id))
            clerks.remove(clerk)
            tickets.pop(ticket_id)


async def test_a_node_reads_everything_when_the_log_does_not_reach_back(
        nodes: list[RedisStore]) -> None:
    a, b = nodes
    await a.add_ticket(_ticket("t1", "kiosk:1"))
    async with a.lock:
        await a.tickets()
    for lost in ("trimmed", "deleted"):
        async with b.lock:
            await b.put_clerk(_clerk(f"clerk-{lost}"))
            await b.put_clerk(_clerk(f"clerk-{lost}-2"))
        if lost == "trimmed":
            await b.redis.ltrim(f"{b.prefix}changes", -1, -1)
        else:
            await b.redis.delete(f"{b.prefix}changes")
        before = a.full_reads
        async with a.lock:
            assert f"clerk-{lost}" in [c.id for c in await a.clerks()]
        assert a.full_reads == before + 1


async def test_the_change_log_keeps_its_last_entries(nodes: list[RedisStore]) -> None:
    a, b = nodes
    async with a.lock:
        await a.put_clerk(_clerk("first"))
        await a.clerks()
    paused: dict[str, bool] = {}
    for i in range(LOG_LENGTH + 2):
        paused[f"m{i % 2}"] = bool(i % 3)
        await b.set_paused(f"m{i % 2}", paused[f"m{i % 2}"])
    changes = f"{b.prefix}changes"
    assert await b.redis.llen(changes) == LOG_LENGTH
    assert await b.redis.lindex(changes, -1) == f"p:m{(LOG_LENGTH + 1) % 2}".encode()
    async with a.lock:  # LOG_LENGTH + 2 behind: more than the log holds
        assert await a.paused() == frozenset(m for m, p in paused.items() if p)
    assert a.full_reads == 2 and a.catch_ups == 0


async def test_a_copy_from_before_redis_lost_its_data_is_not_patched(
        nodes: list[RedisStore]) -> None:
    """After a flush the version restarts far above any copy's, so the log (which now
    describes other writes) is not applied to it."""
    a, b = nodes
    async with a.lock:
        await a.add_ticket(_ticket("t1", "kiosk:1"))
        await a.tickets()
    await b.clear()  # as if Redis restarted without its data
    async with b.lock:
        await b.add_ticket(_ticket("t2", "kiosk:2"))
    async with a.lock:
        assert [r.ticket.id for r in await a.tickets()] == ["t2"]
        assert await a.ticket_of("kiosk:1") is None
    assert a.full_reads == 2 and a.catch_ups == 0
