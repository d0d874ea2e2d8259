"""The nodes of one deployment, in Redis: who is alive, how many sessions' media each
holds, and one pub/sub channel per node for the media events of the sessions pinned to
it.

Liveness is a key per node, rewritten every ``heartbeat_s`` with a TTL of ``ttl_s``,
plus a set naming every node that has ever beaten. A node in the set whose key has
expired is dead; the first survivor to remove it from the set (``SREM`` answers 1 to
exactly one caller) ends its sessions. A node that stops cleanly deletes its key and
leaves its name in the set, so a survivor ends its sessions at once instead of after
the TTL.

Which participants have a socket open, and on which node, is kept here too: a set per
participant (per namespace, so a supervisor's dashboard does not count as a clerk's
console) and one per node, so that a grace timer on one node can tell that the
participant came back on another (and leave their ticket or session alone), and a
survivor can treat the participants of a dead node as disconnected there (their grace
timers died with it).

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
from signaling.notifier import namespace_of

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
        members = sorted(_text(m) for m in await self.redis.smembers(self._members))
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
        members = [_text(m) for m in await self.redis.smembers(self._members)]
        claimed = []
        for node_id in members:
            if node_id == self.node.id or await self.redis.exists(self._key(node_id)):
                continue
            if await self.redis.srem(self._members, node_id) == 1:
                claimed.append(node_id)
        return claimed

    # ---- which participants are connected where -------------------------------------

    def _online_key(self, namespace: str, participant: str) -> str:
        return f"{self.prefix}online:{namespace}:{participant}"

    def _sockets_key(self, node_id: str) -> str:
        return f"{self.prefix}node_sockets:{node_id}"

    async def socket_opened(self, namespace: str, participant: str, sid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._online_key(namespace, participant), f"{self.node.id}/{sid}")
            pipe.sadd(self._sockets_key(self.node.id), f"{namespace}\t{participant}\t{sid}")
            await pipe.execute()

    async def socket_closed(self, namespace: str, participant: str, sid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.srem(self._online_key(namespace, participant), f"{self.node.id}/{sid}")
            pipe.srem(self._sockets_key(self.node.id), f"{namespace}\t{participant}\t{sid}")
            await pipe.execute()

    async def online(self, namespace: str, participant: str) -> bool:
        """Whether the participant has a socket open in ``namespace`` on any live node."""
        count: int = await self.redis.scard(self._online_key(namespace, participant))
        return count > 0

    async def participant_online(self, participant: str) -> bool:
        """:meth:`online` in the participant's own namespace; ``False`` (as on one node)
        when Redis cannot answer, so a grace period still ends."""
        try:
            return await self.online(namespace_of(participant), participant)
        except (RedisError, OSError) as exc:
            log.warning("node.online_check_failed", participant=participant, error=str(exc))
            return False

    async def forget_sockets(self, node_id: str) -> list[tuple[str, str]]:
        """Drop the sockets a dead (or restarted) node had open; returns the
        ``(namespace, participant)`` pairs left with no socket on any node."""
        raw = await self.redis.smembers(self._sockets_key(node_id))
        entries = sorted({_socket_entry(_text(m)) for m in raw})
        if not entries:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            for namespace, participant, sid in entries:
                pipe.srem(self._online_key(namespace, participant), f"{node_id}/{sid}")
            pipe.delete(self._sockets_key(node_id))
            await pipe.execute()
        pairs = sorted({(namespace, participant) for namespace, participant, _ in entries})
        async with self.redis.pipeline(transaction=False) as pipe:
            for namespace, participant in pairs:
                pipe.scard(self._online_key(namespace, participant))
            counts = await pipe.execute()
        return [pair for pair, count in zip(pairs, counts, strict=True) if not count]

    @property
    def changes_channel(self) -> str:
        return f"{self.prefix}queue_changed"

    async def announce_changed(self, forget: list[str],
                               observed: list[tuple[str, float]] | None = None) -> None:
        """Tell every other node that the queue changed (each pushes positions to its own
        sockets), which tickets' last pushed positions to forget, and the handle times
        (matter, seconds) of the sessions completed here since the last announcement,
        for every node's wait estimates."""
        try:
            await self.redis.publish(self.changes_channel, json.dumps(
                {"kind": "queue_changed", "node": self.node.id, "forget": forget,
                 "observed": [[matter, seconds] for matter, seconds in observed or []]}))
        except (RedisError, OSError) as exc:  # the others push at their own next change
            log.warning("node.announce_failed", error=str(exc))

    async def announce_tab(self, participant: str, what: str) -> None:
        """Tell every other node that a clerk's console tab opened here (the newest tab,
        wherever it is, is the active one) or that the active one closed here with no
        other tab of theirs left here (another node may make its newest tab active)."""
        try:
            await self.redis.publish(self.changes_channel, json.dumps(
                {"kind": "tab", "node": self.node.id, "participant": participant,
                 "what": what}))
        except (RedisError, OSError) as exc:  # the rule then holds per node, as on one
            log.warning("node.announce_failed", error=str(exc))

    async def forward(self, node_id: str, message: dict[str, Any]) -> bool:
        receivers: int = await self.redis.publish(self.channel(node_id), json.dumps(message))
        return receivers > 0

    async def listen(self, handle: Callable[[dict[str, Any]], Awaitable[None]],
                     subscribed: asyncio.Event) -> None:
        """Run ``handle`` for each message forwarded to this node, and each change another
        node announced, each in its own task (an answer gathers ICE candidates: one must
        not wait for another)."""
        tasks: set[asyncio.Task[None]] = set()
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.channel(self.node.id), self.changes_channel)
            subscribed.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = json.loads(message["data"])
                if (data.get("kind") in ("queue_changed", "tab")
                        and data.get("node") == self.node.id):
                    continue  # this node's own announcement
                task = asyncio.create_task(_guarded(handle, data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _socket_entry(value: str) -> tuple[str, str, str]:
    namespace, participant, sid = value.split("\t", 2)
    return namespace, participant, sid


async def _guarded(handle: Callable[[dict[str, Any]], Awaitable[None]],
                   message: dict[str, Any]) -> None:
    try:
        await handle(message)
    except Exception:  # one bad message must not stop the listener
        log.exception("node.forwarded_failed", kind=message.get("kind"))
