"""Sessions' media in worker processes, one per core: the same seam as
:class:`~media.endpoint.LocalMediaEndpoint`, with the work spread over the cores.

One Python process relays about 25-30 sessions per core at most (docs/operations.md,
*Media capacity*); its event loop is the limit, not the machine. So each worker
(``media/worker_main.py``) runs a ``LocalMediaEndpoint`` in its own loop, and this
class, in the server's loop, only places sessions and passes calls on:

- **Placement** (:func:`choose_worker`): the worker with the fewest sessions, ties to the
  lowest CPU; a worker at ``max_sessions`` or with loop lag p99 over ``max_lag_ms`` is
  skipped, all skipped gives ``media_busy``. Sticky by session id: reconnects, ICE
  restarts, snapshots and recording go where the session's media are (the answer
  carries that worker's own ICE candidates, so clients send media straight to it).
- **Calls** cross a socket pair as messages with a request id (``media/worker_wire.py``);
  failures and finished recording segments come back as events and reach the same
  ``on_failure`` / ``on_segment`` callbacks as in-process.
- **A worker that dies** fails its pending calls and every participant of its sessions
  with ``media_worker_lost``; the sessions are forgotten (the participants' new offers
  place them anew) and a replacement worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from media.endpoint import EndpointFailureHandler
from media.errors import MediaBusy, MediaError, MediaWorkerLost
from media.recorder import RecordingSettings, RecordingStateError, Segment, SegmentHandler
from media.relay import RelaySettings
from media.snapshot import SnapshotFailed
from media.worker_wire import WorkerStatus, read_message, write_message

logger = logging.getLogger(__name__)

START_WITHIN_S = 300.0
"""Only against a hung worker: one that dies ends its socket at once. Importing aiortc
on a loaded machine has taken over 60 s (niced, next to other work)."""
STOP_WITHIN_S = 10.0
MAX_LAG_MS = 100.0


def default_worker_count() -> int:
    return len(os.sched_getaffinity(0))


def choose_worker(loads: Sequence[WorkerStatus | None], max_sessions: int | None,
                  max_lag_ms: float) -> int | None:
    """Index of the worker a new session goes to, or None when every one is skipped.

    ``loads[i]`` is worker i's status with ``sessions`` as placed by the parent, None for
    a worker that is not running."""
    best: tuple[int, float, int] | None = None
    for index, load in enumerate(loads):
        if load is None or load.lag_p99_ms > max_lag_ms:
            continue
        if max_sessions is not None and load.sessions >= max_sessions:
            continue
        rank = (load.sessions, load.cpu_pct, index)
        if best is None or rank < best:
            best = rank
    return None if best is None else best[2]


@dataclass(eq=False)
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    status: WorkerStatus
    sessions: dict[str, set[str]] = field(default_factory=dict)
    """Placed session id -> roles whose offer this worker answered."""
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    alive: bool = True
    reading: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid


class WorkerMediaEndpoint:
    """Every session's media in one of ``workers`` child processes."""

    def __init__(
        self,
        workers: int,
        settings: RelaySettings | None = None,
        roles: tuple[str, str] = ("citizen", "clerk"),
        on_failure: EndpointFailureHandler | None = None,
        recording: RecordingSettings | None = None,
        on_segment: SegmentHandler | None = None,
        *,
        max_lag_ms: float = MAX_LAG_MS,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.settings = settings or RelaySettings()
        self._count = workers
        self._roles = roles
        self._on_failure = on_failure
        self._recording = recording
        self._on_segment = on_segment
        self.max_lag_ms = max_lag_ms
        """Placement skips a worker whose loop lag p99 is above this."""
        self._workers: list[_Worker | None] = [None] * workers
        self._placement: dict[str, _Worker] = {}
        self._recordings: set[str] = set()
        self._next_request = 0
        self._started: asyncio.Task[None] | None = None
        self._replacing: set[asyncio.Task[None]] = set()
        self._callbacks: set[asyncio.Future[Any]] = set()
        self._closing = False

    @property
    def session_count(self) -> int:
        return len(self._placement)

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers if w is not None and w.alive]

    def worker_statuses(self) -> list[WorkerStatus | None]:
        """Each worker's last report (None while one is starting)."""
        return [w.status if w is not None and w.alive else None for w in self._workers]

    def worker_of(self, session_id: str) -> int | None:
        worker = self._placement.get(session_id)
        return None if worker is None else worker.index

    async def start(self) -> None:
        """Start every worker (the first call does it too); returns once all are ready."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start_all())
        await asyncio.shield(self._started)

    async def _start_all(self) -> None:
        workers = await asyncio.gather(*(self._spawn(i) for i in range(self._count)))
        for worker in workers:
            self._workers[worker.index] = worker

    async def _spawn(self, index: int) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "media.worker_main", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        write_message(writer, ("init", self.settings, self._roles, self._recording))
        try:
            ready = await asyncio.wait_for(read_message(reader), START_WITHIN_S)
            if ready is None or ready[0] != "ready":
                raise RuntimeError(f"media worker {index} did not start")
        except BaseException:
            writer.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        worker = _Worker(index, process, reader, writer, WorkerStatus(pid=process.pid))
        worker.reading = asyncio.create_task(self._read(worker))
        logger.info("media worker %d started, pid %d", index, process.pid)
        return worker

    async def _read(self, worker: _Worker) -> None:
        try:
            while (message := await read_message(worker.reader)) is not None:
                self._handle(worker, message)
        except Exception:
            logger.exception("media worker %d sent a bad message", worker.index)
        finally:
            worker.closed.set()
            self._lost(worker)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "reply":
            _, request_id, ok, value = message
            future = worker.pending.pop(request_id, None)
            if future is not None and not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value.error())
        elif kind == "status":
            worker.status = message[1]
        elif kind == "failure":
            _, session_id, role, wire = message
            if self._placement.get(session_id) is worker:
                self._notify_failure(session_id, role, wire.error())
        elif kind == "segment" and self._on_segment is not None:
            self._callback(self._on_segment(message[1]))

    def _callback(self, result: Awaitable[None] | None) -> None:
        if result is not None:
            future = asyncio.ensure_future(result)
            self._callbacks.add(future)
            future.add_done_callback(self._callback_done)

    def _callback_done(self, future: asyncio.Future[Any]) -> None:
        self._callbacks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            logger.error("media worker event handler failed", exc_info=future.exception())

    def _notify_failure(self, session_id: str, role: str, error: MediaError) -> None:
        if self._on_failure is not None:
            self._callback(self._on_failure(session_id, role, error))

    def _lost(self, worker: _Worker) -> None:
        """The worker's stream ended: a clean stop when closing, otherwise a lost worker."""
        if not worker.alive:
            return
        worker.alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(MediaWorkerLost(worker.index))
        worker.pending.clear()
        if self._closing:
            return
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
        logger.warning("media worker %d (pid %d) lost with %d sessions", worker.index,
                       worker.pid, len(worker.sessions))
        for session_id, roles in worker.sessions.items():
            self._placement.pop(session_id, None)
            self._recordings.discard(session_id)
            for role in sorted(roles):
                self._notify_failure(session_id, role, MediaWorkerLost(worker.index))
        worker.sessions.clear()
        task = asyncio.create_task(self._replace(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self, worker: _Worker) -> None:
        await worker.process.wait()
        while not self._closing:
            try:
                replacement = await self._spawn(worker.index)
            except Exception:
                logger.exception("media worker %d could not be restarted", worker.index)
                await asyncio.sleep(1.0)
                continue
            if self._closing:
                await self._stop(replacement)
            else:
                self._workers[worker.index] = replacement
            return

    async def _call(self, worker: _Worker, method: str, *args: Any, **kwargs: Any) -> Any:
        if not worker.alive:
            raise MediaWorkerLost(worker.index)
        self._next_request += 1
        request_id = self._next_request
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        write_message(worker.writer, ("call", request_id, method, args, kwargs))
        with contextlib.suppress(ConnectionError):  # the reader then fails the future
            await worker.writer.drain()
        return await future

    def _place(self, session_id: str) -> _Worker:
        placed = self._placement.get(session_id)
        if placed is not None:
            return placed
        loads = [WorkerStatus(w.pid, len(w.sessions), w.status.cpu_pct, w.status.lag_p99_ms)
                 if w is not None and w.alive else None for w in self._workers]
        index = choose_worker(loads, self.settings.max_sessions, self.max_lag_ms)
        if index is None:
            raise MediaBusy(self.settings.max_sessions or len(self._placement))
        worker = self._workers[index]
        assert worker is not None
        worker.sessions[session_id] = set()
        self._placement[session_id] = worker
        return worker

    async def answer(self, session_id: str, role: str, offer_sdp: str, *,
                     restart: bool = False) -> str:
        await self.start()
        worker = self._place(session_id)
        sdp: str = await self._call(worker, "answer", session_id, role, offer_sdp,
                                    restart=restart)
        roles = worker.sessions.get(session_id)
        if roles is not None:
            roles.add(role)
        return sdp

    async def snapshot(self, session_id: str, role: str, index: int = 0) -> npt.NDArray[np.uint8]:
        worker = self._placement.get(session_id)
        if worker is None:
            raise SnapshotFailed(f"no media for session {session_id}")
        image: npt.NDArray[np.uint8] = await self._call(worker, "snapshot", session_id, role,
                                                         index)
        return image

    async def leave(self, session_id: str, role: str) -> None:
        worker = self._placement.get(session_id)
        if worker is not None:
            await self._call(worker, "leave", session_id, role)
            worker.sessions.get(session_id, set()).discard(role)

    async def start_recording(self, session_id: str, *, consent_id: str) -> None:
        worker = self._placement.get(session_id)
        if self._recording is None or worker is None:
            state = "not configured" if self._recording is None else "without media"
            raise RecordingStateError(state, "start")
        await self._call(worker, "start_recording", session_id, consent_id=consent_id)
        self._recordings.add(session_id)

    def recording(self, session_id: str) -> bool:
        return session_id in self._recordings

    async def stop_recording(self, session_id: str) -> list[Segment]:
        worker = self._placement.get(session_id)
        self._recordings.discard(session_id)
        if worker is None:
            return []
        segments: list[Segment] = await self._call(worker, "stop_recording", session_id)
        return segments

    async def end(self, session_id: str) -> None:
        worker = self._placement.pop(session_id, None)
        self._recordings.discard(session_id)
        if worker is None:
            return
        worker.sessions.pop(session_id, None)
        with contextlib.suppress(MediaWorkerLost):
            await self._call(worker, "end", session_id)

    async def close(self) -> None:
        """Stop every worker: each closes its sessions (recordings flush their segment)."""
        self._closing = True
        if self._started is not None:
            with contextlib.suppress(Exception):
                await self._started
        for task in list(self._replacing):
            task.cancel()
        await asyncio.gather(*self._replacing, return_exceptions=True)
        await asyncio.gather(*(self._stop(w) for w in self._workers if w is not None))
        self._placement.clear()
        self._recordings.clear()
        await asyncio.gather(*self._callbacks, return_exceptions=True)

    async def _stop(self, worker: _Worker) -> None:
        if worker.alive:
            with contextlib.suppress(ConnectionError):
                write_message(worker.writer, ("close",))
                await worker.writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.closed.wait(), STOP_WITHIN_S)
        worker.writer.close()
        if worker.process.returncode is None:
            try:
                await asyncio.wait_for(worker.process.wait(), STOP_WITHIN_S)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
        if worker.reading is not None:
            await worker.reading
