"""Wait estimates learn from the sessions completed on every node: a node announcing a
queue change sends the handle times it observed, and the others fold them in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.catalogue_loader import load_kiosk_config
from server.node_watch import _handle_times
from server.principals import Principal
from server.settings import DEFAULT_CONFIG_DIR
from signaling.media_signaling import MediaNode
from signaling.memory_store import MemoryStore
from signaling.protocol import QueueJoin
from signaling.queue_service import QueueService, QueueTimings, clerk_key
from signaling.redis_nodes import RedisNodes
from signaling.redis_store import connect
from tests.integration.test_queue_race import CountingJournal, SharedNotifier

MATTER = "EDU-TQ-CONFIRM"
CLERK = Principal("clerk", "clerk:c1", display_name="c1", skills=("*",),
                  jurisdictions=("370500",))


@pytest.fixture
async def nodes() -> AsyncIterator[list[QueueService]]:
    """Two queue services on one store, each announcing its changes to the other."""
    store, notifier = MemoryStore(), SharedNotifier()
    config = load_kiosk_config(DEFAULT_CONFIG_DIR)
    services: list[QueueService] = []
    for _ in range(2):
        services.append(QueueService(store, config, notifier, CountingJournal(),
                                     QueueTimings(wrap_up=0, position_debounce=0.01)))
    for me, other in ((0, 1), (1, 0)):
        async def announce(forget: list[str], observed: list[tuple[str, float]],
                           to: QueueService = services[other]) -> None:
            to.changed_elsewhere(forget, observed)
        services[me].announce = announce
    yield services
    for service in services:
        await service.close()


async def _complete(node: QueueService, citizen: str) -> None:
    principal = Principal("citizen", f"citizen:{citizen}")
    await node.join(principal.subject, principal, QueueJoin.model_validate({"matter": MATTER}))
    notifier = node.notifier
    assert isinstance(notifier, SharedNotifier)
    while True:
        event, data = await asyncio.wait_for(notifier.inbox[clerk_key("c1")].get(), 5)
        if event == "offer":
            break
    await node.accept("c1", data["offer_id"])
    await node.connected(clerk_key("c1"), data["offer_id"])
    await node.end("c1", data["offer_id"], "completed", "served")


async def test_a_session_completed_on_one_node_updates_the_others_estimates(
        nodes: list[QueueService]) -> None:
    a, b = nodes
    seed = b.averager.average_seconds(MATTER)
    await a.clerk_online(CLERK)
    await a.set_presence("c1", "available")
    for i in range(3):
        await _complete(a, f"wx-{i}")
    learnt = a.averager.average_seconds(MATTER)
    assert learnt < seed  # three sessions of milliseconds pulled it down
    for _ in range(100):
        if b.averager.average_seconds(MATTER) != seed:
            break
        await asyncio.sleep(0.01)
    assert b.averager.average_seconds(MATTER) == pytest.approx(learnt)
    # and b does not send them back: a folded each in once
    await asyncio.sleep(0.1)
    assert a.averager.average_seconds(MATTER) == pytest.approx(learnt)


def test_handle_times_of_another_shape_are_left_out() -> None:
    raw: Any = [[MATTER, 120], ["X", 3.5], ["Y"], [1, 2], "Z", [MATTER, "12"]]
    assert _handle_times(raw) == [(MATTER, 120.0), ("X", 3.5)]
    assert _handle_times(None) == []


@pytest.mark.redis
async def test_the_announcement_carries_them_through_redis(
        redis_url: str, redis_prefix: str) -> None:
    redis = connect(redis_url)
    sender = RedisNodes(redis, redis_prefix, MediaNode("n1", ""), ttl_s=5)
    receiver = RedisNodes(redis, redis_prefix, MediaNode("n2", ""), ttl_s=5)
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def handle(message: dict[str, Any]) -> None:
        await got.put(message)

    subscribed = asyncio.Event()
    listening = asyncio.create_task(receiver.listen(handle, subscribed))
    try:
        await asyncio.wait_for(subscribed.wait(), 5)
        await sender.announce_changed(["t1"], [(MATTER, 95.5)])
        message = await asyncio.wait_for(got.get(), 5)
        assert message["forget"] == ["t1"]
        assert _handle_times(message["observed"]) == [(MATTER, 95.5)]
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await redis.aclose()
