"""Garbage-collector settings for a server that holds thousands of long-lived objects.

With the defaults, full (generation 2) collections run every few seconds under load and
walk every connection's objects: the pairing benchmark showed them as the p99 stalls
(offer p99 14-18 ms with them, 2.8 ms with collection off). Full collections are taken
off the allocation trigger and run on a timer instead, so a stall of a few tens of
milliseconds happens every few minutes rather than every few seconds, and cyclic
garbage is still reclaimed.

Young collections keep the default trigger (700) and a generation-1 collection comes
after every 5 of them. A pause is proportional to how many objects it walks: with a
young threshold of 10 000 (and 20 young collections per generation-1 one) the pairing
benchmark saw young collections of 8-18 ms and generation-1 ones of 70-145 ms, each
delaying every offer in flight; with 700/5 they take 0.2-0.9 ms and 2-4 ms (CPU), for
about the same collector time in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

log = structlog.get_logger("xiaowu.gc")
YOUNG_THRESHOLD = 700
MIDDLE_THRESHOLD = 5
FULL_EVERY_S = 300.0


async def gc_ctx(app: web.Application) -> AsyncIterator[None]:
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()  # objects alive after start-up live as long as the process
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, 1_000_000)

    async def full_collections() -> None:
        while True:
            await asyncio.sleep(FULL_EVERY_S)
            started = time.perf_counter()
            found = gc.collect()
            log.info("gc.full", unreachable=found,
                     ms=round((time.perf_counter() - started) * 1000, 1))

    task = asyncio.create_task(full_collections())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    gc.set_threshold(*before)
    gc.unfreeze()
