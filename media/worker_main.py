"""One media worker process: a :class:`LocalMediaEndpoint` in its own event loop.

Started by :class:`media.workers.WorkerMediaEndpoint` as ``python -m media.worker_main
FD`` with one end of a socket pair as ``FD``; the messages are in
:mod:`media.worker_wire`. Each call runs as its own task (an answer waits for ICE
gathering; snapshots and other sessions' calls go on meanwhile). The end of the stream
means the server is gone, killed or not: the worker closes its sessions and exits, so
no orphan keeps ports and CPU.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import socket
import sys
import time
from typing import Any

from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.recorder import Segment
from media.worker_wire import WireError, WorkerStatus, read_message, write_message

logger = logging.getLogger("media.worker")

STATUS_EVERY_S = 1.0
WINDOW_S = 10.0
LAG_TICK_S = 0.05
METHODS = {"answer", "snapshot", "leave", "start_recording", "stop_recording", "end"}


class Gauges:
    """CPU and loop lag over the last ``WINDOW_S``: what placement weighs."""

    def __init__(self) -> None:
        self._cpu: collections.deque[tuple[float, float]] = collections.deque()
        self._lags: collections.deque[tuple[float, float]] = collections.deque()

    async def run_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK_S)
            now = time.monotonic()
            self._lags.append((now, now - before - LAG_TICK_S))

    def status(self, sessions: int) -> WorkerStatus:
        now = time.monotonic()
        self._cpu.append((now, time.process_time()))
        while self._cpu[0][0] < now - WINDOW_S:
            self._cpu.popleft()
        while self._lags and self._lags[0][0] < now - WINDOW_S:
            self._lags.popleft()
        (t0, c0), (t1, c1) = self._cpu[0], self._cpu[-1]
        cpu = 100 * (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
        lags = sorted(lag for _, lag in self._lags)
        lag = lags[int(0.99 * (len(lags) - 1))] if lags else 0.0
        return WorkerStatus(os.getpid(), sessions, round(cpu, 1), round(1000 * lag, 1))


class Worker:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.endpoint: LocalMediaEndpoint | None = None
        self.gauges = Gauges()
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, *message: Any) -> None:
        if not self.writer.is_closing():
            write_message(self.writer, message)

    def _failed(self, session_id: str, role: str, error: MediaError) -> None:
        self.send("failure", session_id, role, WireError.of(error))

    def _segment(self, segment: Segment) -> None:
        self.send("segment", segment)

    async def run(self) -> None:
        init = await read_message(self.reader)
        if init is None or init[0] != "init":
            raise RuntimeError(f"media worker expected init, got {init!r}")
        _, settings, roles, recording = init
        self.endpoint = LocalMediaEndpoint(settings, roles, on_failure=self._failed,
                                           recording=recording, on_segment=self._segment)
        self.send("ready", os.getpid())
        background = [asyncio.create_task(self.gauges.run_lag()),
                      asyncio.create_task(self._report())]
        try:
            while (message := await read_message(self.reader)) is not None:
                if message[0] == "close":
                    break
                task = asyncio.create_task(self._call(*message[1:]))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in background:
                task.cancel()
            await self.endpoint.close()
            self.send("closed")
            if not self.writer.is_closing():
                await self.writer.drain()
            self.writer.close()

    async def _call(self, request_id: int, method: str, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> None:
        assert self.endpoint is not None
        try:
            if method not in METHODS:
                raise ValueError(f"unknown media worker call {method!r}")
            value = await getattr(self.endpoint, method)(*args, **kwargs)
        except Exception as exc:  # every failure goes back to the caller
            if not isinstance(exc, MediaError):
                logger.exception("media worker call %s failed", method)
            self.send("reply", request_id, False, WireError.of(exc))
        else:
            self.send("reply", request_id, True, value)
        await self.writer.drain()

    async def _report(self) -> None:
        assert self.endpoint is not None
        while True:
            self.send("status", self.gauges.status(self.endpoint.session_count))
            await self.writer.drain()
            await asyncio.sleep(STATUS_EVERY_S)


async def main(fd: int) -> None:
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    await Worker(reader, writer).run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="media worker %(process)d %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(int(sys.argv[1])))
