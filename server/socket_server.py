"""The socket.io server: a send queue per connection that fits an idle connection, and
emits that do not yield to the event loop.

python-engineio gives every connection an ``asyncio.Queue`` for the packets waiting to
be written. An empty ``asyncio.Queue`` holds four ``collections.deque`` (items, getters,
putters, and its ``Event``'s waiters), and a deque allocates a 64-slot block when it is
created: about 3.3 KB per connection, a tenth of what an idle connection costs in all,
for a queue that is empty nearly all the time (bench/pairing.py measures this).
:class:`SendQueue` is the unbounded subset of ``asyncio.Queue`` that engine.io uses
(``get``, ``get_nowait``, ``put``, ``put_nowait``, ``task_done``, ``join``), with its
containers created only while something is in them. Its ``get`` returns a future rather
than a coroutine, so ``asyncio.wait_for(queue.get(), ...)`` in engine.io's writer does
not wrap it in one more task per connection.

engine.io builds the queue with ``AsyncServer.create_queue`` (its documented way to
make a queue for the server's async mode) and python-socketio builds its engine.io
server with ``AsyncServer._engineio_server_class``; both are overridden here, and
tests/integration/test_socket_server.py checks that a live connection really gets a
:class:`SendQueue`, so an upgrade of either library that changes this fails a test.

python-socketio's ``AsyncManager.emit`` makes one task per recipient and awaits them all,
even for a single recipient: every emit yields to the event loop. The queue emits under
its lock, several times per change, so each yield let unrelated work (other handlers'
steps, journal writes, timers) run while the lock was held, and the next join waited on
the lock for all of it (bench/pairing.py: join -> offer p99 ~100 ms at 100 joins/s, of
which ~1 ms was the join's own work). :class:`DirectEmitManager` encodes the packet once
and puts it on each recipient's send queue in turn, which never waits (the queues are
unbounded), so an emit is one synchronous step and a critical section stays one step.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import engineio
import socketio
from engineio import packet as eio_packet
from engineio.exceptions import EngineIOError
from socketio import packet

from server.socket_packets import JsonPacket


class SendQueue:
    """An unbounded FIFO for one event loop: ``asyncio.Queue`` semantics for the methods
    engine.io calls. An item put while a getter waits is handed to that getter."""

    __slots__ = ("_getters", "_items", "_joined", "_unfinished")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[Any]] | None = None
        self._unfinished = 0
        self._joined: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():  # a getter whose wait_for timed out is cancelled
                getter.set_result(item)
                if not getters:
                    self._getters = None
                return
        self._getters = None
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def get(self) -> asyncio.Future[Any]:
        """A future of the next item: already done when one is queued."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self.get_nowait())
            return future
        if self._getters is None:
            self._getters = [future]
        else:
            self._getters = [g for g in self._getters if not g.done()]
            self._getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joined is not None:
            if not self._joined.done():
                self._joined.set_result(None)
            self._joined = None

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        if self._joined is None:
            self._joined = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._joined)


class _EngineIoServer(engineio.AsyncServer):  # type: ignore[misc]
    def create_queue(self, *args: Any, **kwargs: Any) -> SendQueue:
        if args or kwargs:  # a bounded queue was asked for: not what SendQueue is
            return super().create_queue(*args, **kwargs)  # type: ignore[no-any-return]
        return SendQueue()


class DirectEmitManager(socketio.AsyncManager):  # type: ignore[misc]
    """``AsyncManager`` whose ``emit`` (without an ack callback) sends to each recipient
    in turn instead of through a task per recipient. A recipient whose socket is closing
    is skipped, as python-socketio's tasks would have failed alone."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   ignore_queue: bool = False, **kwargs: Any) -> None:
        # ``ignore_queue`` is for pub/sub managers (deliver on this node only); a local
        # manager delivers on this node anyway.
        if callback is not None or kwargs:  # one ack id per recipient: the library's way
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                               callback=callback, to=to, **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(packet.EVENT, namespace=namespace,
                                           data=[event, *args]).encode()
        packets = [eio_packet.Packet(eio_packet.MESSAGE, p)
                   for p in (encoded if isinstance(encoded, list) else [encoded])]
        for sid, eio_sid in self.get_participants(namespace, room):  # a copy: may change
            if sid in skip:
                continue
            for pkt in packets:
                try:
                    await self.server.eio.send_packet(eio_sid, pkt)
                except EngineIOError:
                    break


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """``socketio.AsyncServer`` whose connections use :class:`SendQueue`, whose emits
    go through :class:`DirectEmitManager` (unless another manager is given) and whose
    packets are :class:`~server.socket_packets.JsonPacket`."""

    def __init__(self, client_manager: socketio.AsyncManager | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JsonPacket)
        super().__init__(client_manager=client_manager or DirectEmitManager(), **kwargs)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _EngineIoServer
