"""How the queue speaks to people: by participant key, never by socket id.

A participant key names a person or a device — ``clerk:wangli``, ``kiosk:<device id>``,
``citizen:<sub>`` — and every socket of that participant joins a socket.io room of that
name, so a reload or a second node changes nothing for the queue.
"""

from __future__ import annotations

from typing import Any, Protocol

import socketio

NAMESPACE_OF_PREFIX = {"clerk": "/clerk", "kiosk": "/kiosk", "citizen": "/citizen"}


def namespace_of(participant: str) -> str:
    return NAMESPACE_OF_PREFIX[participant.partition(":")[0]]


class Notifier(Protocol):
    """``local``: only to this node's sockets (with several nodes, each node pushes the
    queue's positions and overviews to its own sockets; one node has them all)."""

    async def send(self, participant: str, event: str, data: dict[str, Any], *,
                   local: bool = False) -> None: ...
    async def supervisors(self, event: str, data: dict[str, Any], *,
                          local: bool = False) -> None: ...
    async def all_clerks(self, event: str, data: dict[str, Any], *,
                         local: bool = False) -> None: ...


class SocketNotifier:
    SUPERVISORS_ROOM = "supervisors"
    CLERKS_ROOM = "clerks"

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def send(self, participant: str, event: str, data: dict[str, Any], *,
                   local: bool = False) -> None:
        await self.sio.emit(event, data, room=participant, namespace=namespace_of(participant),
                            ignore_queue=local)

    async def supervisors(self, event: str, data: dict[str, Any], *,
                          local: bool = False) -> None:
        await self.sio.emit(event, data, room=self.SUPERVISORS_ROOM, namespace="/supervisor",
                            ignore_queue=local)

    async def all_clerks(self, event: str, data: dict[str, Any], *,
                         local: bool = False) -> None:
        await self.sio.emit(event, data, room=self.CLERKS_ROOM, namespace="/clerk",
                            ignore_queue=local)
