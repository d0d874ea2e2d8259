"""python-socketio's Redis manager with publishes sent in the background, in order.

The stock ``AsyncRedisManager.emit`` delivers to this node's sockets and then awaits a
``PUBLISH`` for the other nodes: one Redis round trip per emit, in the emitting
coroutine. The queue emits while it holds its lock (an offer, ``session.started`` to
both sides, ``session.ended``...), so every emit lengthened the lock's hold by a round
trip, and with several nodes the other node waited for that lease (measured with
``bench/pairing.py --nodes 2``: about 7 emits per join, all under the lock).

Here ``_publish`` encodes the message at once (so later changes to the data do not
leak into it) and appends it to an outbox; one task per manager sends the outbox in
one pipeline per batch, in the order the emits were made. What this changes: an emit
returns before the other nodes have the message; a node that dies in between loses the
messages of that moment, as it would lose the emits it had not yet made. Local
delivery is unchanged (it happens in ``emit`` itself), and messages from one node keep
their order, so a participant on another node still sees ``session.started`` before
``session.ended``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
import structlog

log = structlog.get_logger("xiaowu.redis_manager")

MAX_BATCH = 256
"""Messages per pipeline; a longer outbox is sent in several."""


class BackgroundPublishingRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    name = "xiaowu-redis"

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._outbox: list[str] = []
        self._sender: asyncio.Task[None] | None = None
        self.published = 0
        """Messages handed to Redis (tests, the benchmark)."""
        self.batches = 0
        """Pipelines that carried them."""
        self.lost = 0
        """Messages given up after Redis refused them twice."""

    async def _publish(self, data: Any) -> None:
        self._outbox.append(self.json.dumps(data))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch = self._outbox[:MAX_BATCH]
            del self._outbox[:MAX_BATCH]
            await self._send(batch)

    async def _send(self, batch: list[str]) -> None:
        for attempt in (1, 2):
            try:
                if not self._connected():
                    self._redis_connect()
                async with self.redis.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(self.channel, message)
                    await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # what the stock manager does: reconnect, once
                self.connected = False
                if attempt == 2:
                    self.lost += len(batch)
                    log.error("socketio.publish_failed", messages=len(batch),
                              error=f"{type(exc).__name__}: {exc}")
                continue
            self.published += len(batch)
            self.batches += 1
            return

    def _connected(self) -> bool:
        return bool(getattr(self, "connected", False))

    async def drain(self) -> None:
        """Wait until every message emitted so far has been handed to Redis (shutdown)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)
