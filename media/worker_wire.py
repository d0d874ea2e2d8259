"""What crosses the socket between the server and a media worker process.

Each message is a 4-byte big-endian length and a pickle. Both ends are this code, one
the parent of the other, so pickle carries the values the endpoint already deals in
(SDP strings, numpy snapshots, :class:`~media.recorder.Segment` records, settings
dataclasses) without a schema of its own. Errors do not cross as exceptions
(``XiaowuError`` subclasses take their own constructor arguments and do not unpickle):
they travel as a :class:`WireError` and come out as a :class:`MediaError` with the same
code, status and messages.

Parent to worker: ``("init", RelaySettings, roles, RecordingSettings | None)`` once,
then ``("call", request_id, method, args, kwargs)``. Worker to parent: ``("ready",
pid)`` once, then ``("reply", request_id, ok, value | WireError)``, ``("failure",
session_id, role, WireError)``, ``("segment", Segment)`` and ``("status",
WorkerStatus)`` every second.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

from media.errors import MediaError
from server.errors import XiaowuError

_LENGTH = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class WireError:
    code: str
    status: int
    message_zh: str
    message_en: str
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, error: BaseException) -> WireError:
        if isinstance(error, XiaowuError):
            return cls(error.code, error.status, error.message_zh, error.message_en,
                       error.detail)
        return cls("internal_error", 500, "视频服务内部错误",
                   f"media worker error: {type(error).__name__}: {error}")

    def error(self) -> MediaError:
        return MediaError(self.message_zh, self.message_en, code=self.code,
                          status=self.status, detail=self.detail)


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A worker's own account of its load: sessions it holds, CPU (% of one core) and
    event-loop lag p99 over the last 10 s."""

    pid: int = 0
    sessions: int = 0
    cpu_pct: float = 0.0
    lag_p99_ms: float = 0.0


def write_message(writer: asyncio.StreamWriter, message: tuple[Any, ...]) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(_LENGTH.pack(len(body)) + body)


async def read_message(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or None at the end of the stream (the other side is gone)."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        (size,) = _LENGTH.unpack(head)
        if size > MAX_MESSAGE:
            raise ValueError(f"media worker message of {size} bytes")
        # Only ever from our own child or parent over a private socket pair.
        message = pickle.loads(await reader.readexactly(size))  # noqa: S301
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    if not isinstance(message, tuple):
        raise ValueError(f"media worker message is a {type(message).__name__}")
    return message
