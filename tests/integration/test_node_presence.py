"""Which participants are connected on which node, shared in Redis, so that a grace
period that ends on one node leaves alone a participant who came back on another, and a
dead node's participants get a grace period on a survivor.

Two in-process nodes: each a :class:`QueueService` on its own :class:`RedisStore` and
:class:`RedisNodes` sharing one key prefix, as two server processes would; the sockets'
comings and goings are told to them as the namespaces do.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from server.catalogue_loader import load_kiosk_config
from server.principals import Principal
from server.settings import DEFAULT_CONFIG_DIR
from signaling.media_signaling import MediaNode
from signaling.protocol import QueueJoin
from signaling.queue_service import QueueService, QueueTimings
from signaling.redis_nodes import RedisNodes
from signaling.redis_store import RedisStore, connect
from tests.integration.test_queue_race import CountingJournal, SharedNotifier
from tests.unit.queue_sessions import CLERK

pytestmark = pytest.mark.redis
GRACE = 0.2
TEACHER = QueueJoin.model_validate({"matter": "EDU-TQ-CONFIRM"})
CITIZENS = "/citizen"


@dataclass
class Node:
    service: QueueService
    nodes: RedisNodes

    async def socket_opened(self, participant: str, sid: str) -> None:
        await self.nodes.socket_opened(CITIZENS, participant, sid)
        await self.service.citizen_online(participant)

    async def socket_closed(self, participant: str, sid: str) -> None:
        await self.nodes.socket_closed(CITIZENS, participant, sid)
        await self.service.citizen_offline(participant)


@pytest.fixture
async def two(redis_url: str, redis_prefix: str) -> AsyncIterator[tuple[Node, Node]]:
    config = load_kiosk_config(DEFAULT_CONFIG_DIR)
    made = []
    for name in ("a", "b"):
        store = RedisStore(connect(redis_url), redis_prefix)
        nodes = RedisNodes(store.redis, redis_prefix, MediaNode(name, ""), ttl_s=1.0)
        service = QueueService(store, config, SharedNotifier(), CountingJournal(),
                               QueueTimings(grace=GRACE), node=nodes.node,
                               online=nodes.participant_online)
        made.append(Node(service, nodes))
    yield made[0], made[1]
    for node in made:
        await node.service.close()
        assert isinstance(node.service.store, RedisStore)
        await node.service.store.close()


async def _join(node: Node, subject: str) -> str:
    citizen = Principal("citizen", subject)
    ticket = await node.service.join(subject, citizen, TEACHER)
    return str(ticket["ticket_id"])


async def _waiting(node: Node, subject: str) -> bool:
    async with node.service.store.lock:
        return await node.service.store.ticket_of(subject) is not None


async def _dropped(node: Node, subject: str) -> bool:
    """Whether the ticket goes within 10 s (its grace timer may run late on a busy
    machine)."""
    for _ in range(200):
        if not await _waiting(node, subject):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_sockets_are_counted_per_node_and_namespace(redis_url: str,
                                                          redis_prefix: str) -> None:
    redis = connect(redis_url)
    a = RedisNodes(redis, redis_prefix, MediaNode("a", ""), ttl_s=1.0)
    b = RedisNodes(redis, redis_prefix, MediaNode("b", ""), ttl_s=1.0)
    try:
        await a.socket_opened("/clerk", "clerk:wangli", "s1")
        await a.socket_opened("/citizen", "citizen:wx-1", "s2")
        await a.socket_opened("/citizen", "citizen:wx-2", "s3")
        await b.socket_opened("/citizen", "citizen:wx-2", "s9")
        await a.socket_opened("/supervisor", "clerk:lihua", "s4")
        assert await a.participant_online("clerk:wangli")
        assert await b.participant_online("citizen:wx-1")
        # a supervisor's dashboard is not a clerk's console
        assert not await a.participant_online("clerk:lihua")

        await a.socket_closed("/clerk", "clerk:wangli", "s1")
        assert not await b.participant_online("clerk:wangli")

        # node a dies: its sockets go, and only those with no socket elsewhere are lost
        lost = await b.forget_sockets("a")
        assert lost == [("/citizen", "citizen:wx-1"), ("/supervisor", "clerk:lihua")]
        assert not await b.participant_online("citizen:wx-1")
        assert await b.participant_online("citizen:wx-2")
        assert await b.forget_sockets("a") == []
    finally:
        await redis.aclose()


async def test_a_citizen_back_on_another_node_keeps_their_place(
        two: tuple[Node, Node]) -> None:
    a, b = two
    await a.socket_opened("citizen:wx-back", "s1")
    await a.socket_opened("citizen:wx-gone", "s2")
    kept = await _join(a, "citizen:wx-back")
    await _join(a, "citizen:wx-gone")

    await a.socket_closed("citizen:wx-back", "s1")  # grace starts on node a
    await a.socket_closed("citizen:wx-gone", "s2")
    await b.socket_opened("citizen:wx-back", "s3")  # back on b: a's timer still runs
    await asyncio.sleep(GRACE * 4)

    assert await _dropped(b, "citizen:wx-gone")  # did not come back: dropped
    assert await _waiting(b, "citizen:wx-back")
    again = await b.service.join("citizen:wx-back", Principal("citizen", "citizen:wx-back"),
                                 TEACHER)
    assert again["ticket_id"] == kept


async def test_a_dead_nodes_citizens_get_a_grace_period_on_a_survivor(
        two: tuple[Node, Node]) -> None:
    a, b = two
    await a.socket_opened("citizen:wx-late", "s1")
    await a.socket_opened("citizen:wx-moved", "s2")
    await _join(a, "citizen:wx-late")
    await _join(a, "citizen:wx-moved")
    # node a dies without a word (no disconnects); one citizen reconnects to b at once
    await b.socket_opened("citizen:wx-moved", "s3")
    for _, participant in await b.nodes.forget_sockets("a"):
        await b.service.participant_lost_with_node(participant)

    assert await _waiting(b, "citizen:wx-late")  # the grace period runs first
    assert await _dropped(b, "citizen:wx-late")
    await asyncio.sleep(GRACE * 2)  # past wx-moved's grace period, had it started one
    assert await _waiting(b, "citizen:wx-moved")


async def test_a_clerk_back_on_another_node_keeps_the_call(two: tuple[Node, Node]) -> None:
    a, b = two
    await a.nodes.socket_opened("/clerk", "clerk:c1", "s1")
    await a.service.clerk_online(CLERK)
    await a.service.set_presence("c1", "available")
    await a.socket_opened("citizen:wx-call", "s2")
    await _join(a, "citizen:wx-call")
    notifier = a.service.notifier
    assert isinstance(notifier, SharedNotifier)
    while True:
        event, data = await asyncio.wait_for(notifier.inbox["clerk:c1"].get(), 5)
        if event == "offer":
            break
    await a.service.accept("c1", data["offer_id"])

    await a.nodes.socket_closed("/clerk", "clerk:c1", "s1")
    await a.service.clerk_offline("c1")  # the console dropped: grace on node a
    await b.nodes.socket_opened("/clerk", "clerk:c1", "s3")
    await b.service.clerk_online(CLERK)
    await asyncio.sleep(GRACE * 4)

    async with b.service.store.lock:
        record = await b.service.store.get_clerk("c1")
    assert record is not None and record.session_id == data["offer_id"]
    assert str(record.state) == "busy"


async def test_a_clerk_whose_old_socket_closes_after_they_moved_node_stays_at_work(
        two: tuple[Node, Node]) -> None:
    """The browser reconnected to node b before node a noticed the old socket was gone
    (a ping timeout later): node a must not put the clerk offline, nor withdraw an
    offer node b's console is about to answer."""
    a, b = two
    await a.nodes.socket_opened("/clerk", "clerk:c1", "s1")
    await a.service.clerk_online(CLERK)
    await a.service.set_presence("c1", "available")
    await b.nodes.socket_opened("/clerk", "clerk:c1", "s2")  # the console, reconnected
    await b.service.clerk_online(CLERK)
    await a.socket_opened("citizen:wx-1", "s3")
    await _join(a, "citizen:wx-1")  # offered to the clerk

    await a.nodes.socket_closed("/clerk", "clerk:c1", "s1")  # node a notices at last
    await a.service.clerk_offline("c1")

    async with b.service.store.lock:
        record = await b.service.store.get_clerk("c1")
    assert record is not None and str(record.state) == "offered"
    assert record.offer_id is not None
