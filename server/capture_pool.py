"""The document pipeline's worker processes: decoding and OpenCV work off the event loop.

A 40 MP photo takes a core for a second or more, and a hostile one is best decoded far
from the process that holds every call's sockets; so captures run in a
``ProcessPoolExecutor`` of ``XIAOWU_DOCUMENT_WORKERS`` processes. Workers come from a
*forkserver* that has already imported the pipeline (numpy, OpenCV, Pillow): starting one
takes milliseconds, and nothing is forked from the server process itself, whose threads
(database drivers, the default executor) a plain ``fork`` would copy mid-flight.

The pool is created on first use, so an app that never receives a capture starts no
process. A worker that dies (out of memory on some image) breaks the executor; the next
capture gets a fresh one and this one answers ``503 capture_failed``.

Errors cannot cross the process boundary as exceptions (``XiaowuError`` subclasses do not
unpickle), so a worker returns a :class:`Rejection` value and the server raises it here.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import structlog
from numpy.typing import NDArray

from media.documents.pipeline import ProcessedCapture, process_frame, process_upload
from media.intake import ImageRejected
from server.errors import XiaowuError

log = structlog.get_logger("xiaowu.capture")
PRELOAD = ["server.capture_pool"]  # and with it the pipeline, numpy, OpenCV, Pillow


@dataclass(frozen=True)
class Rejection:
    code: str
    status: int
    message_zh: str
    message_en: str
    detail: dict[str, Any] = field(default_factory=dict)

    def error(self) -> XiaowuError:
        return XiaowuError(self.message_zh, self.message_en, code=self.code,
                           status=self.status, detail=self.detail)


def upload_job(data: bytes, kind: str, aspect_ratio: float | None, max_bytes: int,
               max_pixels: int) -> ProcessedCapture | Rejection:
    """Runs in a worker: an upload through the pipeline, a refusal as a value."""
    try:
        return process_upload(data, kind, aspect_ratio=aspect_ratio, max_bytes=max_bytes,
                              max_pixels=max_pixels)
    except ImageRejected as exc:
        return Rejection(exc.code, exc.status, exc.message_zh, exc.message_en, exc.detail)


def frame_job(bgr: NDArray[np.uint8], kind: str,
              aspect_ratio: float | None) -> ProcessedCapture:
    return process_frame(bgr, kind, aspect_ratio=aspect_ratio)


class CapturePool:
    def __init__(self, workers: int, *, timeout_s: float = 60.0) -> None:
        self.workers = workers
        self.timeout_s = timeout_s
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            self._executor = ProcessPoolExecutor(self.workers, mp_context=context,
                                                 initializer=exit_with,
                                                 initargs=(os.getpid(),))
        return self._executor

    async def warm(self) -> None:
        """Start every worker now (one trivial job each), so the first capture does not wait
        for the forkserver to import OpenCV."""
        executor = self._pool()
        try:
            await asyncio.gather(*(_submit(executor, _ready) for _ in range(self.workers)))
        except BrokenProcessPool:
            log.error("capture.warm_failed", workers=self.workers)
            return
        log.info("capture.workers_ready", workers=self.workers)

    async def upload(self, data: bytes, kind: str, *, aspect_ratio: float | None,
                     max_bytes: int, max_pixels: int) -> ProcessedCapture:
        result = await self._run(partial(upload_job, data, kind, aspect_ratio, max_bytes,
                                         max_pixels))
        if isinstance(result, Rejection):
            raise result.error()
        assert isinstance(result, ProcessedCapture)
        return result

    async def frame(self, bgr: NDArray[np.uint8], kind: str, *,
                    aspect_ratio: float | None) -> ProcessedCapture:
        result = await self._run(partial(frame_job, bgr, kind, aspect_ratio))
        assert isinstance(result, ProcessedCapture)
        return result

    async def _run(self, job: partial[Any]) -> Any:
        executor = self._pool()
        try:
            return await asyncio.wait_for(_submit(executor, job), self.timeout_s)
        except BrokenProcessPool:
            log.error("capture.pool_broken", workers=self.workers)
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise _failed("worker_died") from None
        except TimeoutError:
            log.error("capture.timeout", seconds=self.timeout_s)
            raise _failed("timeout") from None

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


async def _submit(executor: ProcessPoolExecutor, job: Any) -> Any:
    """``executor.submit`` from a thread: when it starts a worker it waits for the
    forkserver to answer, which the first time means importing OpenCV and numpy (the
    server's event loop stalled 0.2-0.35 s per worker at start)."""
    future = await asyncio.to_thread(executor.submit, job)
    return await asyncio.wrap_future(future)


def exit_with(server_pid: int) -> None:
    """Runs first in each worker: end this worker when the server process ends.

    A worker's parent is the forkserver, not the server, and it waits on a queue whose
    writing end it holds itself: when the server is killed (SIGKILL, the OOM killer) the
    workers wait for ever, and they hold the forkserver's liveness pipe open, so it stays
    too, with the libraries it preloaded. Every crash left three such processes behind.
    A thread waits on a pidfd of the server (no polling) and ends the worker when the
    server is gone; the forkserver then sees its pipe close and ends as well.
    """
    try:
        pidfd = os.pidfd_open(server_pid)
    except (AttributeError, OSError):  # not Linux >= 5.3, or the server is gone already
        if not _alive(server_pid):
            os._exit(0)
        threading.Thread(target=_poll_server, args=(server_pid,), daemon=True,
                         name="exit-with-server").start()
        return
    threading.Thread(target=_wait_server, args=(pidfd,), daemon=True,
                     name="exit-with-server").start()


def _wait_server(pidfd: int) -> None:
    select.select([pidfd], [], [])  # readable once the process has exited
    os._exit(0)


def _poll_server(server_pid: int) -> None:
    while _alive(server_pid):
        time.sleep(2.0)
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        pass
    return True


def _ready() -> bool:
    return True


def _failed(reason: str) -> XiaowuError:
    return XiaowuError("图片处理失败，请重新拍摄", "the image could not be processed; try again",
                       code="capture_failed", status=503, detail={"reason": reason})
