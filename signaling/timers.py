"""Named one-shot timers whose actions run as tasks under the queue's lock.

Offer timeouts, wrap-up ends, grace periods and escalation wake-ups are all "do this at
that time unless cancelled first"; one keyed registry makes cancelling explicit and
closing on shutdown complete (no task outlives the app).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from signaling.store import QueueLock

log = structlog.get_logger("xiaowu.timers")


class Timers:
    def __init__(self, lock: QueueLock) -> None:
        self._lock = lock
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, key: str, delay: float, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` after ``delay`` seconds, replacing any timer of the same key."""
        self.cancel(key)
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._handles.pop(key, None)
            task = loop.create_task(self._run(key, action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._handles[key] = loop.call_later(max(0.0, delay), fire)

    def cancel(self, key: str) -> bool:
        handle = self._handles.pop(key, None)
        if handle is None:
            return False
        handle.cancel()
        return True

    def pending(self, key: str) -> bool:
        return key in self._handles

    def spawn(self, key: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` soon, under the lock, as an owned task."""
        self.schedule(key, 0.0, action)

    def background(self, key: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` now, *without* the lock, as an owned task (slow I/O such as
        closing a session's media)."""
        task = asyncio.get_running_loop().create_task(self._run(key, action, locked=False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, action: Callable[[], Awaitable[None]],
                   locked: bool = True) -> None:
        if not locked:
            try:
                await action()
            except Exception:
                log.exception("timer.failed", timer=key)
            return
        try:
            async with self._lock:
                await action()
        except Exception:
            log.exception("timer.failed", timer=key)

    async def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
