"""Wait estimates learn from the sessions completed on every node: a node announcing a
queue change sends the handle times it observed, and the others fold them in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.node_watch import _handle_times
from server.principals import Principal
from signaling.media_signaling import MediaNode
from signaling.queue_service import QueueService, QueueTimings
from signaling.redis_nodes import RedisNodes
from signaling.redis_store import connect
from tests.unit.queue_sessions import CLERK, TEACHER, serve, services_on_one_store

MATTER = TEACHER.matter


@pytest.fixture
async def nodes() -> AsyncIterator[list[QueueService]]:
    """Two queue services on one store, each announcing its changes to the other."""
    services = services_on_one_store(2, QueueTimings(wrap_up=0, position_debounce=0.01))
    for me, other in ((0, 1), (1, 0)):
        async def announce(forget: list[str], observed: list[tuple[str, float]],
                           to: QueueService = services[other]) -> None:
            to.changed_elsewhere(forget, observed)
        services[me].announce = announce
    yield services
    for service in services:
        await service.close()


async def test_a_session_completed_on_one_node_updates_the_others_estimates(
        nodes: list[QueueService]) -> None:
    a, b = nodes
    seed = b.averager.average_seconds(MATTER)
    await a.clerk_online(CLERK)
    await a.set_presence("c1", "available")
    for i in range(3):
        await serve(a, Principal("citizen", f"citizen:wx-{i}"))
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
