"""Several nodes: this node's heartbeat, the watch for dead nodes, and the listener for
media events forwarded to this node and for changes of the queue on other nodes.

Started by the app when a Redis URL is set. At start the node first ends any session
still pinned to its own id (a restart with a fixed ``XIAOWU_NODE_ID``: the media it
held died with the old process), then beats every ``node_heartbeat_s``; on each beat it
also claims the nodes whose heartbeat expired and ends their sessions through
:meth:`QueueService.node_lost`, under the queue's cross-node lock; the participants whose
sockets were all on a dead node and are not back elsewhere start their grace periods on
the node that found it dead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from aiohttp import web
from redis.exceptions import RedisError

from server import app_keys
from signaling.queue_service import QueueService
from signaling.redis_nodes import RedisNodes

log = structlog.get_logger("xiaowu.nodes")


async def _on_forwarded(app: web.Application, message: dict[str, Any]) -> None:
    queue = app[app_keys.QUEUE]
    if message.get("kind") == "tab":
        await app[app_keys.CONSOLES].tab_elsewhere(str(message.get("participant")),
                                                   str(message.get("what")))
        return
    if message.get("kind") == "queue_changed":
        queue.changed_elsewhere([str(t) for t in message.get("forget", [])],
                                _handle_times(message.get("observed")))
        return
    session_id = str(message["session_id"])
    if message.get("kind") == "end":
        if app_keys.MEDIA in app:
            await app[app_keys.MEDIA].end(session_id)
        return
    await queue.answer_forwarded(str(message["participant"]), session_id,
                                 str(message["event"]), dict(message["data"]))


def _handle_times(raw: Any) -> list[tuple[str, float]]:
    """The ``observed`` of a ``queue_changed`` message; entries of another shape (a node
    of another release) are left out."""
    found: list[tuple[str, float]] = []
    for entry in raw if isinstance(raw, list) else []:
        if (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], int | float)):
            found.append((entry[0], float(entry[1])))
    return found


async def _participants_lost(queue: QueueService, nodes: RedisNodes, node_id: str) -> None:
    """The participants whose sockets were all on ``node_id`` and who are not back on
    another node: their grace periods start here (the dead node's timers died with it)."""
    for _, participant in await nodes.forget_sockets(node_id):
        await queue.participant_lost_with_node(participant)


async def _beat_and_watch(app: web.Application, nodes: RedisNodes, every_s: float) -> None:
    queue = app[app_keys.QUEUE]
    while True:
        try:
            media = app.get(app_keys.MEDIA)
            await nodes.beat(media.session_count if media is not None else 0)
            for node_id in await nodes.claim_dead():
                await queue.node_lost(node_id)
                await _participants_lost(queue, nodes, node_id)
        except (RedisError, OSError) as exc:  # Redis away for a moment: beat again later
            log.warning("node.heartbeat_failed", error=str(exc))
        await asyncio.sleep(every_s)


async def nodes_ctx(app: web.Application) -> AsyncIterator[None]:
    nodes = app[app_keys.NODES]
    settings = app[app_keys.SETTINGS]
    await app[app_keys.QUEUE].node_lost(nodes.node.id)
    await _participants_lost(app[app_keys.QUEUE], nodes, nodes.node.id)
    subscribed = asyncio.Event()
    listener = asyncio.create_task(
        nodes.listen(lambda message: _on_forwarded(app, message), subscribed))
    waiting = asyncio.create_task(subscribed.wait())
    await asyncio.wait([listener, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if listener.done():
        listener.result()  # raises why the node could not subscribe
    beating = asyncio.create_task(_beat_and_watch(app, nodes, settings.node_heartbeat_s))
    yield
    for task in (beating, listener):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with contextlib.suppress(RedisError, OSError):
        await nodes.leave()
