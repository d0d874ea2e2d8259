"""How late an event loop runs its callbacks: the bench's starvation gauge.

A process whose loop is late by more than its UDP receive buffer holds (a few hundred
ms of media per socket) drops packets in the kernel; the relay bench reports this so a
starved client is not mistaken for a slow server.
"""

from __future__ import annotations

import asyncio
import time

TICK_S = 0.02


class LoopLag:
    def __init__(self) -> None:
        self._lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK_S)
            self._lags.append(time.monotonic() - before - TICK_S)

    def take(self) -> dict[str, float]:
        """Lag in ms since the last call: p99 and max."""
        lags, self._lags = sorted(self._lags), []
        if not lags:
            return {"p99_ms": 0.0, "max_ms": 0.0}
        return {"p99_ms": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1),
                "max_ms": round(1000 * lags[-1], 1)}
