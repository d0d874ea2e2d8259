"""A timed wrap-up ends on time whichever node set its timer: the end time is stored with
the clerk, a node the clerk comes back to (or the survivor of a dead node) sets a timer
of its own, and a timer left over from an earlier wrap-up cannot cut a later one short.

Two queue services on one store stand for two nodes (as in the race test's baseline)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.principals import Principal
from signaling.presence import PresenceState
from signaling.queue_service import QueueService, QueueTimings
from signaling.store_codec import decode_clerk, encode_clerk
from tests.unit.queue_sessions import CLERK, serve, services_on_one_store

WRAP_UP = 0.4


@pytest.fixture
async def nodes() -> AsyncIterator[list[QueueService]]:
    services = services_on_one_store(2, QueueTimings(wrap_up=WRAP_UP))
    yield services
    for service in services:
        await service.close()


async def _serve(node: QueueService, citizen: str) -> None:
    """A citizen joins on ``node`` and the clerk (available) serves them to the end."""
    await serve(node, Principal("citizen", f"citizen:{citizen}"))


async def _state(node: QueueService) -> PresenceState:
    record = await node.store.get_clerk("c1")
    assert record is not None
    return record.state


async def _available_within(node: QueueService, seconds: float) -> bool:
    for _ in range(int(seconds / 0.02)):
        if await _state(node) is PresenceState.AVAILABLE:
            return True
        await asyncio.sleep(0.02)
    return False


async def _in_wrap_up_on_a_then_a_dies(nodes: list[QueueService]) -> None:
    a, _ = nodes
    await a.clerk_online(CLERK)
    await a.set_presence("c1", "available")
    await _serve(a, "wx-1")
    record = await a.store.get_clerk("c1")
    assert record is not None and record.state is PresenceState.WRAP_UP
    assert record.wrap_up_until is not None
    await a.timers.close()  # node a dies with its wrap-up timer


async def test_the_node_a_clerk_comes_back_to_ends_their_wrap_up(
        nodes: list[QueueService]) -> None:
    await _in_wrap_up_on_a_then_a_dies(nodes)
    b = nodes[1]
    await b.clerk_online(CLERK)  # the console reconnects to node b
    assert await _state(b) is PresenceState.WRAP_UP
    assert await _available_within(b, 10 * WRAP_UP)


async def test_the_survivor_of_a_dead_node_ends_its_wrap_ups(
        nodes: list[QueueService]) -> None:
    await _in_wrap_up_on_a_then_a_dies(nodes)
    b = nodes[1]
    await b.node_lost("node-a")  # the clerk's console is still on node b
    assert await _available_within(b, 10 * WRAP_UP)


async def test_a_timer_left_from_an_earlier_wrap_up_does_not_end_a_later_one(
        nodes: list[QueueService]) -> None:
    a, b = nodes
    await a.clerk_online(CLERK)
    await a.set_presence("c1", "available")
    await _serve(a, "wx-1")  # wrap-up one, its timer on node a
    await b.clerk_online(CLERK)
    await b.wrapup_done("c1")  # ended on node b: node a's timer stays set
    await _serve(b, "wx-2")  # wrap-up two
    await a._end_wrap_up("c1", "wrap_up_elapsed", due=True)  # node a's timer fires
    assert await _state(b) is PresenceState.WRAP_UP
    assert await _available_within(b, 10 * WRAP_UP)  # wrap-up two ends on its own time


async def test_the_end_of_a_wrap_up_survives_the_store() -> None:
    """The Redis store keeps clerks as JSON: the end time goes with them, and a record
    written by a node of the previous release (no such field) still reads."""
    [service] = services_on_one_store(1, QueueTimings(wrap_up=WRAP_UP))
    store = service.store
    try:
        await service.clerk_online(CLERK)
        await service.set_presence("c1", "available")
        await _serve(service, "wx-1")
        record = await store.get_clerk("c1")
        assert record is not None and record.wrap_up_until is not None
        assert decode_clerk(encode_clerk(record)).wrap_up_until == record.wrap_up_until
        older = encode_clerk(record).replace(
            f',"wrap_up_until":{record.wrap_up_until!r}', "")
        assert "wrap_up_until" not in older
        assert decode_clerk(older).wrap_up_until is None
        await service.wrapup_done("c1")
        after = await store.get_clerk("c1")
        assert after is not None and after.wrap_up_until is None  # cleared with the state
    finally:
        await service.close()
