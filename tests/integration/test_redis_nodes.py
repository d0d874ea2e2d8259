"""Node liveness and forwarding on a real Redis: heartbeats name the live nodes, exactly
one survivor claims a dead node, and a forward says whether any node of that id heard it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signaling.media_signaling import MediaNode
from signaling.redis_nodes import NodeBeat, RedisNodes
from signaling.redis_store import connect

pytestmark = pytest.mark.redis


@pytest.fixture
async def three(redis_url: str, redis_prefix: str) -> AsyncIterator[list[RedisNodes]]:
    found = [RedisNodes(connect(redis_url), redis_prefix, MediaNode(name, f"http://{name}"),
                        ttl_s=60) for name in ("a", "b", "c")]
    yield found
    for nodes in found:
        await nodes.redis.aclose()


async def test_a_node_that_stopped_beating_is_claimed_by_exactly_one_survivor(
        three: list[RedisNodes]) -> None:
    a, b, c = three
    for count, nodes in enumerate(three):
        await nodes.beat(count)
    assert await a.live() == [NodeBeat("a", "http://a", 0), NodeBeat("b", "http://b", 1),
                              NodeBeat("c", "http://c", 2)]
    assert await a.claim_dead() == []

    await b.leave()  # as a TTL expiry would: the key is gone, the name stays in the set
    claims = await asyncio.gather(a.claim_dead(), c.claim_dead())
    assert sorted(claims, key=len) == [[], ["b"]]
    assert await a.claim_dead() == [] and await c.claim_dead() == []
    assert [beat.id for beat in await c.live()] == ["a", "c"]


async def test_a_forward_reaches_the_listening_node_and_reports_nobody_listening(
        three: list[RedisNodes]) -> None:
    a, b, _ = three
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def handle(message: dict[str, Any]) -> None:
        await heard.put(message)

    subscribed = asyncio.Event()
    listener = asyncio.create_task(a.listen(handle, subscribed))
    try:
        await asyncio.wait_for(subscribed.wait(), 5)
        assert await b.forward("a", {"kind": "end", "session_id": "s_1"})
        assert await asyncio.wait_for(heard.get(), 5) == {"kind": "end", "session_id": "s_1"}
        assert not await b.forward("nobody", {"kind": "end", "session_id": "s_1"})
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
