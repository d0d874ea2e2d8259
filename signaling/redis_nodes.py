"""The nodes of one deployment, in Redis: who is alive, how many sessions' media each
holds, and one pub/sub channel per node for the media events of the sessions pinned to
it.

Liveness is a key per node, rewritten every ``heartbeat_s`` with a TTL of ``ttl_s``,
plus a set naming every node that has ever beaten. A node in the set whose key has
expired is dead; the first survivor to remove it from the set (``SREM`` answers 1 to
exactly one caller) ends its sessions. A node that stops cleanly deletes its key and
leaves its name in the set, so a survivor ends its sessions at once instead of after
the TTL.

Forwarding is plain ``PUBLISH``: Redis answers how many subscribers got the message, so
a sender knows at once when no node of that id listens (it died, or never existed) and
the participant gets an error instead of waiting for an answer that cannot come. A
message to a live node that dies before answering is lost; that node's sessions end
with ``node_lost`` within the TTL anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from signaling.media_signaling import MediaNode

log = structlog.get_logger("xiaowu.nodes")


@dataclass(frozen=True, slots=True)
class NodeBeat:
    """What a node's heartbeat says: where to reach it and how busy its media is."""

    id: str
    url: str
    sessions: int


class RedisNodes:
    def __init__(self, redis: Redis, prefix: str, node: MediaNode, *,
                 ttl_s: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._members = f"{prefix}nodes"

    def _key(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    def channel(self, node_id: str) -> str:
        return f"{self.prefix}media:{node_id}"

    async def beat(self, sessions: int) -> None:
        value = json.dumps({"id": self.node.id, "url": self.node.url, "sessions": sessions})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(self.node.id), value, px=self.ttl_ms)
            pipe.sadd(self._members, self.node.id)
            await pipe.execute()

    async def leave(self) -> None:
        """Stopping cleanly: the survivors end this node's sessions without waiting."""
        await self.redis.delete(self._key(self.node.id))

    async def live(self) -> list[NodeBeat]:
        members = sorted(m.decode() if isinstance(m, bytes) else str(m)
                         for m in await self.redis.smembers(self._members))
        if not members:
            return []
        values = await self.redis.mget([self._key(m) for m in members])
        beats = []
        for raw in values:
            if raw is not None:
                data = json.loads(raw)
                beats.append(NodeBeat(str(data["id"]), str(data["url"]), int(data["sessions"])))
        return beats

    async def claim_dead(self) -> list[str]:
        """The nodes found dead that this node is now responsible for cleaning up."""
        members = [m.decode() if isinstance(m, bytes) else str(m)
                   for m in await self.redis.smembers(self._members)]
        claimed = []
        for node_id in members:
            if node_id == self.node.id or await self.redis.exists(self._key(node_id)):
                continue
            if await self.redis.srem(self._members, node_id) == 1:
                claimed.append(node_id)
        return claimed

    async def forward(self, node_id: str, message: dict[str, Any]) -> bool:
        receivers: int = await self.redis.publish(self.channel(node_id), json.dumps(message))
        return receivers > 0

    async def listen(self, handle: Callable[[dict[str, Any]], Awaitable[None]],
                     subscribed: asyncio.Event) -> None:
        """Run ``handle`` for each message forwarded to this node, each in its own task
        (an answer gathers ICE candidates: one must not wait for another)."""
        tasks: set[asyncio.Task[None]] = set()
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel(self.node.id))
            subscribed.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                task = asyncio.create_task(_guarded(handle, json.loads(message["data"])))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _guarded(handle: Callable[[dict[str, Any]], Awaitable[None]],
                   message: dict[str, Any]) -> None:
    try:
        await handle(message)
    except Exception:  # one bad message must not stop the listener
        log.exception("node.forwarded_failed", kind=message.get("kind"))
