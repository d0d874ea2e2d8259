"""Client worker processes for the pairing benchmark, driven over a pipe.

Each worker is a spawned process with one asyncio loop hosting one *role* object
(:class:`bench.pairing_citizens.Citizens`, :class:`bench.pairing_clerks.Clerks`). The
parent sends ``(command, kwargs)``; the worker awaits ``role.<command>(**kwargs)`` and
answers ``("ok", result)`` or ``("error", traceback)``. Commands run one at a time; the
role's own tasks (clerks answering offers, citizens re-joining) run in between.

A worker ignores SIGINT (the parent decides when everything stops) and exits when the
pipe closes, so a parent that dies cannot leave clients behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import multiprocessing
import resource
import signal
import time
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol


class Role(Protocol):
    async def close(self) -> None: ...


class WorkerError(RuntimeError):
    pass


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settle_heap() -> None:
    """Once its clients are connected, a worker holds hundreds of thousands of objects
    that live until the end. Left in the collector's reach, they make a full collection
    stop the worker for 0.1-0.5 s now and then (the pacer's "worst late"), and every
    join sent or offer received meanwhile would count as the server's latency. Frozen,
    they are skipped, and the worker pauses only for the objects of the phase itself,
    as a real device holding one connection would. The echo baseline's client runs in a
    worker settled the same way."""
    gc.collect()
    gc.freeze()


def worker_main(conn: Connection, role_path: str, options: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(conn, role_path, options))


async def _serve(conn: Connection, role_path: str, options: dict[str, Any]) -> None:
    module, _, name = role_path.partition(":")
    role: Any = getattr(importlib.import_module(module), name)(**options)
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(conn.fileno(), readable.set)
    try:
        while True:
            await readable.wait()
            readable.clear()
            while conn.poll():
                try:
                    command, kwargs = conn.recv()
                except EOFError:
                    return
                if command == "quit":
                    conn.send(("ok", None))
                    return
                try:
                    if command == "cpu_s":
                        result: Any = _cpu_s()
                    else:
                        result = await getattr(role, command)(**kwargs)
                    if command == "connect":
                        _settle_heap()
                    conn.send(("ok", result))
                except Exception:
                    conn.send(("error", traceback.format_exc()))
    finally:
        loop.remove_reader(conn.fileno())
        with contextlib.suppress(Exception):
            await asyncio.wait_for(role.close(), 15)


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, name: str, role_path: str, options: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, role_path, options),
                                   name=name, daemon=True)
        self.process.start()
        child.close()

    def send(self, command: str, **kwargs: Any) -> None:
        self.conn.send((command, kwargs))

    def result(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise WorkerError(f"{self.name}: no answer within {timeout:.0f} s")
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise WorkerError(f"{self.name} exited ({self.process.exitcode})") from None
        if status == "error":
            raise WorkerError(f"{self.name} failed:\n{value}")
        return value

    def call(self, command: str, timeout: float, **kwargs: Any) -> Any:
        self.send(command, **kwargs)
        return self.result(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the worker to disconnect its clients and exit; terminate it if it does not
        answer within ``timeout`` (it may be in the middle of a long command)."""
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.conn.send(("quit", {}))
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and self.conn.poll(
                        max(0.0, deadline - time.monotonic())):
                    if self.conn.recv() == ("ok", None):
                        break
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(3)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(3)
        self.conn.close()


def call_all(workers: Sequence[Worker], command: str, timeout: float,
             per_worker: Sequence[dict[str, Any]] | None = None, **kwargs: Any) -> list[Any]:
    """Send ``command`` to every worker at once, then collect the answers in order."""
    for i, worker in enumerate(workers):
        worker.send(command, **kwargs, **(per_worker[i] if per_worker else {}))
    return [worker.result(timeout) for worker in workers]
