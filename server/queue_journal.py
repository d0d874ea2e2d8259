"""The queue's journal in the database: write-behind, batched, in order per row.

The queue enqueues plain records synchronously and never waits for the disk. One writer
task lets rows gather for up to ``COALESCE_S`` after the first, then commits what has
accumulated in one transaction: all inserts first (executemany per table, in arrival
order, in chunks of ``CHUNK`` rows), then all updates (in arrival order). A row's insert
always precedes its updates, whether in an earlier batch or in this one, so that order
is safe. ``flush`` waits until everything enqueued so far is
committed (shutdown and tests use it).

Queue actions in the audit log go the same way: a crash may lose the last fraction of a
second of them. Case reads and writes (the audit trail that matters for a case file)
are written in the same transaction as the change instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog

from server.storage import tables
from server.storage.database import Database
from server.storage.types import utcnow
from signaling.presence import PresenceEvent
from signaling.sessions import Session, SessionEvent, SessionState
from signaling.store import TicketRecord

log = structlog.get_logger("xiaowu.journal")
COALESCE_S = 0.05
"""How long the first row of a batch waits for others: one transaction per interval under
load instead of one per handful of rows. Each transaction and each statement costs a
round trip to the driver's thread and SQLAlchemy's per-statement work on the event loop,
which at 100 joins/s made the journal the largest single consumer of the loop."""
BATCH = 1000
"""Rows per transaction at most."""
CHUNK = 50
"""Rows per executemany: each one's parameter processing runs on the event loop in one
step, so chunks bound the stall."""
RETRIES = 5
RETRY_DELAY_S = 0.5
Insert = tuple[sa.Table, dict[str, Any]]
Update = tuple[sa.Table, str, dict[str, Any]]
_Item = Insert | Update | asyncio.Future[None]


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class DbJournal:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._writer())

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def flush(self) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(done)
        self._hurry.set()
        await done

    async def _writer(self) -> None:
        while True:
            items = [await self._queue.get()]
            if not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), COALESCE_S)
            self._hurry.clear()
            while not self._queue.empty() and len(items) < BATCH:
                items.append(self._queue.get_nowait())
            rows = [i for i in items if not isinstance(i, asyncio.Future)]
            for attempt in range(1, RETRIES + 1):
                try:
                    await self._commit(rows)
                    break
                except Exception:
                    # The database may be restarting: keep the batch and try again; only
                    # a batch that keeps failing is given up, loudly.
                    log.exception("journal.write_failed", rows=len(rows), attempt=attempt,
                                  given_up=attempt == RETRIES)
                    if attempt < RETRIES:
                        await asyncio.sleep(RETRY_DELAY_S * attempt)
            for item in items:
                if isinstance(item, asyncio.Future) and not item.done():
                    item.set_result(None)

    async def _commit(self, items: list[Insert | Update]) -> None:
        """Fold each row's updates into its insert (same batch) or into one update, then
        send one executemany per table and column set."""
        if not items:
            return
        inserts: dict[sa.Table, list[dict[str, Any]]] = defaultdict(list)
        pending: dict[tuple[sa.Table, str], dict[str, Any]] = {}
        for item in items:
            if len(item) == 2:
                table, row = item
                inserts[table].append(row)
                if "id" in row:
                    pending[(table, row["id"])] = row
            else:
                table, row_id, values = item
                target = pending.setdefault((table, row_id), {"id": row_id, "_update": True})
                target.update(values)
        updates: dict[tuple[sa.Table, tuple[str, ...]], list[dict[str, Any]]] = defaultdict(list)
        for (table, _), row in pending.items():
            if row.pop("_update", False):
                columns = tuple(sorted(k for k in row if k != "id"))
                updates[(table, columns)].append({"b_id": row.pop("id"), **row})
        async with self.db.begin() as conn:
            for table, rows in inserts.items():
                for start in range(0, len(rows), CHUNK):
                    await conn.execute(sa.insert(table), rows[start:start + CHUNK])
            for (table, columns), rows in updates.items():
                statement = (sa.update(table).where(table.c.id == sa.bindparam("b_id"))
                             .values({c: sa.bindparam(c) for c in columns}))
                for start in range(0, len(rows), CHUNK):
                    await conn.execute(statement, rows[start:start + CHUNK])

    def ticket_opened(self, record: TicketRecord) -> None:
        ticket = record.ticket
        self._queue.put_nowait((tables.queue_tickets, {
            "id": ticket.id, "matter": ticket.matter, "channel": str(ticket.channel),
            "hut_id": ticket.hut_id, "region": record.region, "priority": str(ticket.priority),
            "owner": record.owner, "created_at": _at(ticket.created_at),
            "closed_at": None, "close_reason": None}))

    def ticket_closed(self, ticket_id: str, reason: str, at: float) -> None:
        self._queue.put_nowait((tables.queue_tickets, ticket_id,
                                {"closed_at": _at(at), "close_reason": reason}))

    def presence(self, event: PresenceEvent) -> None:
        self._queue.put_nowait((tables.clerk_events, {
            "clerk": event.clerk_id, "old": str(event.old), "new": str(event.new),
            "reason": event.reason[:64], "at": _at(event.at)}))

    def session(self, session: Session, event: SessionEvent | None, matter: str) -> None:
        values = {
            "state": str(session.state),
            "outcome": None if session.outcome is None else str(session.outcome),
            "end_reason": session.end_reason,
            "accepted_at": _at(session.entered.get(SessionState.ACCEPTED)),
            "active_at": _at(session.entered.get(SessionState.ACTIVE)),
            "ended_at": _at(session.entered.get(SessionState.ENDED)),
            "wait_s": session.wait_seconds,
            "handle_s": session.handle_seconds,
        }
        if event is None:
            self._queue.put_nowait((tables.service_sessions, {
                "id": session.session_id, "ticket_id": session.ticket_id,
                "clerk": session.clerk_id, "matter": matter,
                "offered_at": _at(session.entered[SessionState.OFFERED]), **values}))
        else:
            self._queue.put_nowait((tables.service_sessions, session.session_id, values))

    def audit(self, *, actor: str, role: str, action: str, object_type: str,
              object_id: str | None, outcome: str,
              detail: dict[str, Any] | None = None) -> None:
        self._queue.put_nowait((tables.audit_log, {
            "at": utcnow(), "actor": actor[:128], "role": role, "action": action,
            "object_type": object_type, "object_id": object_id, "outcome": outcome,
            "ip": None, "detail": detail}))
