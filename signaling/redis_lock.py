"""The queue lock across nodes: a fair, expiring lease on Redis.

Why a lock at all, when offers are claimed atomically: the queue shell reads a clerk,
a ticket or a session, runs the pure state machine and writes the result back. Two
nodes doing that to the same record at once (a clerk accepting on one node while the
offer times out on another) would lose one of the writes. One node's shell already runs
every change under one lock; this makes that lock hold across nodes, so the shell's
reasoning is the same on one node and on several.

What it does not guarantee, and why that is acceptable: a lease can expire under a
holder that stalls (a blocked event loop, a network partition) longer than ``ttl``,
and then two holders overlap. The invariants that matter most, one offer per ticket
and one per clerk, are therefore not left to the lock: the store's claim script checks
them atomically in Redis whatever the lock does. The lease only bounds how long a dead
node can stop the queue.

Handing over locally: a holder that leaves while other coroutines of its node wait for
the lock keeps the lease for them, for at most ``hold`` (20 ms) after the lease was
taken, so one burst of a node's events costs one lease instead of one per event.

Fairness: a node that releases and wants the lock again goes behind the nodes already
waiting (a FIFO of waiters, each identified by a token and dropped when it stops
asking), so a busy node cannot starve a quiet one. Handing over costs one round trip:
a waiter blocks on a wake-up list of its own (``BLPOP``) that the releasing node pushes
to, and asks again at least every ``recheck`` seconds, which keeps its place alive and
notices a lease that expired under a dead holder. (Polling instead cost a race of 1,000
tickets on two nodes 70 lock requests per ticket and most of its time.)
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from types import TracebackType
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis

from signaling.redis_changes import CHANGES_FN

log = structlog.get_logger("xiaowu.queue_lock")

# KEYS: holder, waiters (zset: token -> arrival), seen (hash: token -> last poll ms),
#       arrivals (counter), this waiter's wake-up list, the store's version counter,
#       then the store's change log, tickets, offers, owners, clerks, paused
# ARGV: token, ttl_ms, stale_ms, the version of the caller's copy of the store or ''.
# Returns 0, or once acquired {1, the store's version} and, when a version was given,
# what the store's ``changes_since`` returns for it (the catch-up rides on the lease).
_ACQUIRE = CHANGES_FN + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = ARGV[1]
if redis.call('ZSCORE', KEYS[2], token) == false then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), token)
end
redis.call('HSET', KEYS[3], token, now)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
while true do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head == token then
    break
  end
  local seen = tonumber(redis.call('HGET', KEYS[3], head) or '0')
  if now - seen <= tonumber(ARGV[3]) then
    return 0
  end
  redis.call('ZREM', KEYS[2], head)
  redis.call('HDEL', KEYS[3], head)
end
redis.call('ZREM', KEYS[2], token)
redis.call('HDEL', KEYS[3], token)
redis.call('DEL', KEYS[5])
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
local version = tonumber(redis.call('GET', KEYS[6]) or '0')
if ARGV[4] == '' then return {1, version} end
local changed = changes_since({KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11],
                               KEYS[12]}, tonumber(ARGV[4]))
return {1, version, changed}
"""

# KEYS: holder, waiters, seen, this waiter's wake-up list, the store's version counter
# ARGV: token, wake-up prefix. Returns {1 if the lease was still ours, version}, and
# wakes the first waiter in line.
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
local ours = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  ours = 1
end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if head then
  local wake = ARGV[2] .. head
  redis.call('RPUSH', wake, 1)
  redis.call('PEXPIRE', wake, 10000)
end
return {ours, tonumber(redis.call('GET', KEYS[5]) or '0')}
"""


_orphan_tasks: set[asyncio.Task[None]] = set()


def _cancel_requested() -> bool:
    """A cancellation can be lost inside a client library (Python 3.11's ``wait_for``
    drops one that races the awaited result; see ``redis_store.connect``); a waiter that
    looped on would then ignore cancellation until the lock came free."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


NOT_ASKED: Any = object()
"""``lease_started``'s ``changed`` when the listener had no copy to bring up to date."""


class LeaseListener(Protocol):
    """Told the store's version (a counter every write bumps) as the lease starts and
    ends, so the store can tell whether anyone else wrote in between."""

    def copy_version(self) -> int | None:
        """The version of the listener's copy of the store, to have what changed since
        returned with the lease; ``None``: no copy."""
        ...

    def lease_started(self, version: int, changed: Any = NOT_ASKED) -> None:
        """``changed``: what ``changes_since`` returned for ``copy_version()`` (a list, or
        ``None`` when the change log does not reach back that far), or ``NOT_ASKED``."""
        ...

    def lease_ended(self, version: int | None) -> None:
        """``None`` when the lease had expired (another node may have written)."""
        ...


class RedisQueueLock:
    """An ``async with`` lock: local coroutines queue on an asyncio lock, nodes on Redis."""

    def __init__(self, redis: Redis, prefix: str, *, ttl: float = 5.0, recheck: float = 0.25,
                 stale: float = 2.0, hold: float = 0.02,
                 listener: LeaseListener | None = None,
                 catch_up_keys: list[str] | None = None) -> None:
        self._redis = redis
        self._listener = listener
        self._version_key = f"{prefix}version"
        self._catch_up_keys = catch_up_keys or []
        """The store's change log, tickets, offers, owners, clerks and paused keys: with
        them the acquire script returns what changed since the listener's copy."""
        self._keys = [f"{prefix}lock", f"{prefix}lock:waiters", f"{prefix}lock:seen",
                      f"{prefix}lock:arrivals"]
        self._wake = f"{prefix}lock:wake:"
        self._ttl_ms = int(ttl * 1000)
        self._stale_ms = int(stale * 1000)
        self._recheck = recheck
        self._local = asyncio.Lock()
        self._node = secrets.token_hex(6)
        self._count = itertools.count()
        self._token: str | None = None
        self._hold = hold
        self._leased_at = 0.0
        self._waiting = 0  # local coroutines waiting for the lock
        self.leases = 0  # leases taken on Redis (tests and the benchmark read them)
        self.handovers = 0  # holders that got the lease from a local holder instead
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    def locked(self) -> bool:
        return self._local.locked()

    async def __aenter__(self) -> None:
        self._waiting += 1
        try:
            await self._local.acquire()
        finally:
            self._waiting -= 1
        if self._token is not None:  # a local holder kept the lease for this one
            self.handovers += 1
            return
        token = f"{self._node}:{next(self._count)}"
        wake = self._wake + token
        keys = [*self._keys, wake, self._version_key, *self._catch_up_keys]
        since = None
        if self._listener is not None and self._catch_up_keys:
            since = self._listener.copy_version()
        args: list[str | int] = [token, self._ttl_ms, self._stale_ms,
                                 "" if since is None else since]
        try:
            while not (got := await self._acquire(keys=keys, args=args)):
                if _cancel_requested():
                    raise asyncio.CancelledError
                await self._redis.blpop([wake], timeout=self._recheck)
        except BaseException:
            # Cancelled or Redis gone: leave no lease and no place in the line behind.
            await asyncio.shield(self._give_up(token))
            self._local.release()
            raise
        self._token = token
        self._leased_at = asyncio.get_running_loop().time()
        self.leases += 1
        if self._listener is not None:
            if len(got) > 2:
                self._listener.lease_started(int(got[1]), got[2])
            else:
                self._listener.lease_started(int(got[1]))

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        loop = asyncio.get_running_loop()
        if (self._token is not None and self._waiting
                and loop.time() - self._leased_at < self._hold):
            # Hand the lease to the next local waiter: one lease per burst of this node's
            # events, not one per event (each costs two scripts, and after the other
            # node's writes a read of what changed). Bounded by ``hold`` so that the
            # other nodes' waiters, in line on Redis, get their turn.
            self._local.release()
            loop.call_soon(self._release_if_orphaned)
            return
        await self._end_lease()

    def _release_if_orphaned(self) -> None:
        """The waiter the lease was kept for was cancelled before it ran, and nobody
        else holds the local lock: end the lease rather than leave it to expire."""
        if self._token is not None and not self._local.locked():
            task = asyncio.get_running_loop().create_task(self._end_orphaned())
            _orphan_tasks.add(task)
            task.add_done_callback(_orphan_tasks.discard)

    async def _end_orphaned(self) -> None:
        await self._local.acquire()
        if self._token is not None:
            await self._end_lease()
        else:
            self._local.release()

    async def _end_lease(self) -> None:
        """Give the lease back on Redis and release the local lock."""
        token, self._token = self._token, None
        version: int | None = None
        try:
            if token is not None:
                ours, version = await self._release_token(token)
                if not ours:
                    version = None
                    log.warning("queue_lock.lease_lost", token=token, ttl_ms=self._ttl_ms)
        finally:
            if self._listener is not None:
                self._listener.lease_ended(version)
            self._local.release()

    async def _release_token(self, token: str) -> tuple[bool, int]:
        keys = [*self._keys[:3], self._wake + token, self._version_key]
        ours, version = await self._release(keys=keys, args=[token, self._wake])
        return bool(ours), int(version)

    async def _give_up(self, token: str) -> None:
        try:
            await self._release_token(token)
        except Exception:  # the lease expires by itself; the waiter entry goes stale
            log.warning("queue_lock.give_up_failed", token=token)
