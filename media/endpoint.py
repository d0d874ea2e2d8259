"""Where sessions' media live, behind a seam that can move them to worker processes.

:class:`MediaEndpoint` is all the rest of the server sees of media: SDP strings in and
out, role names, session ids, snapshot images (numpy arrays, picklable) and failures as
stable error codes. Nothing else crosses it (no tracks, no peer connections, no app
state), so :class:`media.workers.WorkerMediaEndpoint` has the same methods and runs a
:class:`LocalMediaEndpoint` per worker process, one per core. Clients talk media
straight to whichever process answered their offer: the answer carries that process's
own ICE candidates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from media.aiortc_internals import check_compatible
from media.errors import MediaBusy, MediaError
from media.recorder import (
    RecordingSettings,
    RecordingStateError,
    Segment,
    SegmentHandler,
    SessionRecorder,
    first_free_take,
)
from media.relay import RelaySession, RelaySettings
from media.snapshot import SnapshotFailed

EndpointFailureHandler = Callable[[str, str, MediaError], Awaitable[None] | None]


class MediaEndpoint(Protocol):
    async def answer(self, session_id: str, role: str, offer_sdp: str, *,
                     restart: bool = False) -> str: ...

    async def snapshot(self, session_id: str, role: str, index: int = 0) -> npt.NDArray[np.uint8]:
        ...

    async def leave(self, session_id: str, role: str) -> None: ...

    async def start_recording(self, session_id: str, *, consent_id: str) -> None: ...

    async def stop_recording(self, session_id: str) -> list[Segment]: ...

    def recording(self, session_id: str) -> bool: ...

    async def end(self, session_id: str) -> None: ...

    async def close(self) -> None: ...

    @property
    def session_count(self) -> int: ...


class LocalMediaEndpoint:
    """Every session's media in this process and event loop."""

    def __init__(
        self,
        settings: RelaySettings | None = None,
        roles: tuple[str, str] = ("citizen", "clerk"),
        on_failure: EndpointFailureHandler | None = None,
        recording: RecordingSettings | None = None,
        on_segment: SegmentHandler | None = None,
    ) -> None:
        check_compatible()
        self.settings = settings or RelaySettings()
        self._roles = roles
        self._on_failure = on_failure
        self._recording = recording
        self._on_segment = on_segment
        self._sessions: dict[str, RelaySession] = {}
        self._recorders: dict[str, SessionRecorder] = {}
        self._takes: dict[str, int] = {}

    def session(self, session_id: str) -> RelaySession | None:
        return self._sessions.get(session_id)

    @property
    def session_count(self) -> int:
        """Sessions whose media this process holds (each node's heartbeat reports it)."""
        return len(self._sessions)

    async def answer(self, session_id: str, role: str, offer_sdp: str, *,
                     restart: bool = False) -> str:
        """Answer ``role``'s offer: a first join, a reconnect, or (``restart``) an ICE
        restart after a network change; each replaces the role's previous leg."""
        relay = self._sessions.get(session_id)
        if relay is None:
            limit = self.settings.max_sessions
            if limit is not None and len(self._sessions) >= limit:
                raise MediaBusy(limit)
            relay = RelaySession(
                session_id, self._roles, self.settings, self._failure_handler(session_id)
            )
            self._sessions[session_id] = relay
        return await relay.connect(role, offer_sdp, restart=restart)

    async def snapshot(self, session_id: str, role: str, index: int = 0) -> npt.NDArray[np.uint8]:
        relay = self._sessions.get(session_id)
        if relay is None:
            raise SnapshotFailed(f"no media for session {session_id}")
        return await relay.snapshot(role, index)

    async def leave(self, session_id: str, role: str) -> None:
        relay = self._sessions.get(session_id)
        if relay is not None:
            await relay.disconnect(role)

    async def start_recording(self, session_id: str, *, consent_id: str) -> None:
        """Record every track of the session from now on; see :mod:`media.recorder`."""
        relay = self._sessions.get(session_id)
        if self._recording is None or relay is None:
            state = "not configured" if self._recording is None else "without media"
            raise RecordingStateError(state, "start")
        if session_id in self._recorders:
            raise RecordingStateError(self._recorders[session_id].state, "start")
        take = first_free_take(self._recording.directory, session_id,
                               self._takes.get(session_id, 0))
        recorder = SessionRecorder(relay, self._recording, self._on_segment, take=take)
        await recorder.start(consent_id=consent_id)
        self._takes[session_id] = take + 1
        self._recorders[session_id] = recorder

    def recording(self, session_id: str) -> bool:
        return session_id in self._recorders

    async def stop_recording(self, session_id: str) -> list[Segment]:
        recorder = self._recorders.pop(session_id, None)
        return [] if recorder is None else await recorder.stop()

    async def end(self, session_id: str) -> None:
        await self.stop_recording(session_id)
        self._takes.pop(session_id, None)
        relay = self._sessions.pop(session_id, None)
        if relay is not None:
            await relay.close()

    async def close(self) -> None:
        await asyncio.gather(*(self.stop_recording(sid) for sid in list(self._recorders)))
        relays = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(relay.close() for relay in relays))

    def _failure_handler(
        self, session_id: str
    ) -> Callable[[str, MediaError], Awaitable[None] | None]:
        def handle(role: str, error: MediaError) -> Awaitable[None] | None:
            if self._on_failure is None:
                return None
            return self._on_failure(session_id, role, error)

        return handle
