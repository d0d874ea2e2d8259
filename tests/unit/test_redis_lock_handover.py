"""The queue lock hands its Redis lease from one local holder to the next waiting one,
within a bound, instead of taking a lease per event (real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from signaling.redis_lock import RedisQueueLock
from signaling.redis_store import connect

pytestmark = pytest.mark.redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    yield client
    await client.aclose()


async def test_a_burst_of_local_events_shares_one_lease(redis: Redis,
                                                        redis_prefix: str) -> None:
    lock = RedisQueueLock(redis, redis_prefix, hold=5.0)
    inside = 0
    most = 0

    async def event() -> None:
        nonlocal inside, most
        async with lock:
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(event() for _ in range(10)))
    assert most == 1
    assert (lock.leases, lock.handovers) == (1, 9)
    other = RedisQueueLock(redis, redis_prefix)
    await asyncio.wait_for(other.__aenter__(), 2)  # the lease was given back at the end
    await other.__aexit__(None, None, None)


async def test_a_busy_node_lets_the_other_in_after_its_hold(redis: Redis,
                                                           redis_prefix: str) -> None:
    busy = RedisQueueLock(redis, redis_prefix, hold=0.02)
    other = RedisQueueLock(redis, redis_prefix)
    entered: list[str] = []

    async def event(lock: RedisQueueLock, name: str) -> None:
        async with lock:
            entered.append(name)
            await asyncio.sleep(0.002)

    burst = [asyncio.create_task(event(busy, f"busy{i}")) for i in range(100)]
    await asyncio.sleep(0.01)  # the busy node holds the lease, its events queue locally
    await event(other, "other")
    await asyncio.gather(*burst)
    assert entered.index("other") < entered.index("busy99")
    assert busy.leases >= 2


async def test_a_lease_kept_for_a_waiter_that_was_cancelled_is_given_back(
        redis: Redis, redis_prefix: str) -> None:
    lock = RedisQueueLock(redis, redis_prefix, ttl=30.0, hold=5.0)
    await lock.__aenter__()
    waiter = asyncio.create_task(lock.__aenter__())
    await asyncio.sleep(0.01)  # waiting on the local lock
    await lock.__aexit__(None, None, None)  # keeps the lease for the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    other = RedisQueueLock(redis, redis_prefix)
    await asyncio.wait_for(other.__aenter__(), 2)  # not after the 30 s lease
    await other.__aexit__(None, None, None)
