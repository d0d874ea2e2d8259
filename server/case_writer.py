"""Group commit for what the queue writes into case files: openings and session ends.

Every accepted offer opens a case and every ended session stamps it. Written one
transaction each, SQLite (``synchronous=FULL``: one fsync per commit, ~4 ms on this
machine kind's disk) and the queue's journal share one writer, and at 100 accepts/s the
openings fell behind without bound: waiting for a pooled connection, the last ones were
still unwritten when the benchmark stopped the server.

:class:`CaseWriter` writes whatever has been asked for since its last commit in one
transaction, in the order asked, with a fixed number of statements per batch
(``case_openings``). A request waits up to ``GATHER_S`` for others to share its
transaction, as the queue's journal does: with a commit as soon as one was asked for,
at 100 pairings/s batches held one or two requests and running their statements was
a quarter of the event loop's time (bench/pairing.py, CPU per callback); nobody waits on
an opening in that time (the queue opens cases in the background, a page asking for its
case gets it 50 ms later at most). Requests that arrive during a commit share the next
one, so the commits per second stay what the disk can do. Each request gets its own
result. If a batch fails (another node opened the same ticket's case a moment
earlier, say), every request of it is written again in a transaction of its own, so one
request's failure is its alone. ``close`` writes what is pending before the database
closes: a request whose caller has gone (cancelled at shutdown) is still written.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

from server.case_openings import Opening, open_case, open_cases_in, sessions_ended_in
from server.case_records import CaseRecord
from server.storage.database import Database

log = structlog.get_logger("xiaowu.cases")
MAX_BATCH = 200
GATHER_S = 0.05


@dataclass(frozen=True)
class SessionEnd:
    session_id: str
    at: datetime


Request = Opening | SessionEnd
_Pending = tuple[Request, "asyncio.Future[Any]"]


class CaseWriter:
    def __init__(self, db: Database, *, max_batch: int = MAX_BATCH,
                 gather_s: float = GATHER_S) -> None:
        self.db = db
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._closing = asyncio.Event()
        self._pending: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed (tests and the benchmark read it)

    async def open(self, opening: Opening) -> tuple[CaseRecord, bool]:
        """The ticket's case, opened if it has none; ``True`` when this request opened it."""
        result: tuple[CaseRecord, bool] = await self._submit(opening)
        return result

    async def session_ended(self, session_id: str, at: datetime) -> None:
        await self._submit(SessionEnd(session_id, at))

    def _submit(self, request: Request) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        # retrieved here, so a failure whose caller has gone is not logged as unretrieved
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append((request, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        # The caller may be cancelled while waiting; the write goes on regardless.
        return asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            if len(self._pending) < self.max_batch and not self._closing.is_set():
                with contextlib.suppress(TimeoutError):  # let others join this batch
                    await asyncio.wait_for(self._closing.wait(), self.gather_s)
            while self._pending:
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                await self._write(batch)
        finally:
            self._task = None

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            results = await self._transaction([request for request, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for one in batch:  # find the one that failed: each alone
                    await self._write([one])
            else:
                await self._failed_alone(*batch[0], exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    async def _failed_alone(self, request: Request, future: asyncio.Future[Any],
                            exc: Exception) -> None:
        if isinstance(exc, sa.exc.IntegrityError) and isinstance(request, Opening):
            try:  # lost a race with another opener: open_case reads its case
                _settle(future, result=await open_case(self.db, request))
                return
            except Exception as again:
                exc = again
        log.error("case.write_failed", request=type(request).__name__,
                  session=request.session_id, error=str(exc))
        _settle(future, error=exc)

    async def _transaction(self, requests: list[Request]) -> list[Any]:
        """Openings first (in order), then session ends: an end is only ever asked after
        its session's opening, so when both are in one batch the case is there."""
        async with self.db.begin() as conn:
            opened = iter(await open_cases_in(
                conn, [r for r in requests if isinstance(r, Opening)]))
            await sessions_ended_in(conn, [(r.session_id, r.at) for r in requests
                                           if isinstance(r, SessionEnd)])
        self.commits += 1
        return [next(opened) if isinstance(r, Opening) else None for r in requests]

    async def close(self) -> None:
        """Write everything asked for so far, without waiting for others to join."""
        self._closing.set()
        while self._task is not None:
            await asyncio.shield(self._task)


def _settle(future: asyncio.Future[Any], *, result: Any = None,
            error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
