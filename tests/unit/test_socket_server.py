"""SendQueue keeps asyncio.Queue's behaviour for what engine.io asks of it, in far less
memory while idle."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from server.socket_server import SendQueue


async def test_items_come_out_in_order_and_an_empty_queue_says_so() -> None:
    queue = SendQueue()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    for item in ("a", "b", "c"):
        await queue.put(item)
    assert queue.qsize() == 3
    assert await queue.get() == "a"
    assert [queue.get_nowait(), queue.get_nowait()] == ["b", "c"]
    assert queue.empty()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_waiting_getter_receives_the_next_item_and_later_ones_queue_behind() -> None:
    queue = SendQueue()
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await waiting == 1
    assert queue.get_nowait() == 2


async def test_a_getter_that_timed_out_loses_no_item() -> None:
    queue = SendQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("after the timeout")
    assert await asyncio.wait_for(queue.get(), 1) == "after the timeout"


async def test_join_waits_for_task_done_of_every_item() -> None:
    queue = SendQueue()
    await queue.join()  # nothing put: returns at once
    queue.put_nowait("x")
    queue.put_nowait(None)
    joined = asyncio.ensure_future(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError, match="too many"):
        queue.task_done()


async def test_a_cancelled_join_does_not_break_the_next_one() -> None:
    queue = SendQueue()
    queue.put_nowait("x")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.join(), 0.01)
    joined = asyncio.ensure_future(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.wait_for(joined, 1)


async def test_an_idle_queue_with_its_writer_waiting_is_a_fraction_of_asyncio_queue() -> None:
    """What one idle connection holds: an empty queue with one pending ``get``."""

    async def traced(make: type[SendQueue] | type[asyncio.Queue[object]]) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            queues = [make() for _ in range(200)]
            getters = [asyncio.ensure_future(q.get()) for q in queues]
            await asyncio.sleep(0)
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        for getter in getters:
            getter.cancel()
        await asyncio.gather(*getters, return_exceptions=True)
        return used // len(queues)

    ours, theirs = await traced(SendQueue), await traced(asyncio.Queue)
    assert ours * 3 < theirs, (ours, theirs)
