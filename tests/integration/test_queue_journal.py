"""The write-behind journal folds a row's updates into its insert and keeps their order."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from server.queue_journal import CHUNK, DbJournal
from server.storage import tables
from server.storage.database import Database
from signaling.sessions import Outcome, Session, SessionState
from signaling.store import TicketRecord
from signaling.tickets import Channel, Pool, Priority, Ticket


def _ticket() -> TicketRecord:
    ticket = Ticket("t_1", "EDU-TQ-CONFIRM", "education", Channel.MOBILE, Priority.NORMAL,
                    1_800_000_000.0, 60.0, (Pool("city", frozenset({"370500"})),))
    return TicketRecord(ticket, "citizen:wx-1", "370500")


async def test_updates_in_the_same_batch_and_later_batches_land_in_order(
    database: Database,
) -> None:
    journal = DbJournal(database)
    journal.start()
    try:
        record = _ticket()
        session = Session("s_1", ticket_id="t_1", clerk_id="wangli",
                          ticket_created_at=record.ticket.created_at,
                          offered_at=1_800_000_010.0)
        journal.ticket_opened(record)
        journal.session(session, None, "EDU-TQ-CONFIRM")
        for state, at in ((SessionState.ACCEPTED, 12.0), (SessionState.CONNECTING, 12.5)):
            journal.session(session, session.transition(state, reason="x",
                                                        now=1_800_000_000.0 + at), "m")
        await journal.flush()
        for state, at in ((SessionState.ACTIVE, 14.0),):
            journal.session(session, session.transition(state, reason="x",
                                                        now=1_800_000_000.0 + at), "m")
        journal.session(session, session.transition(
            SessionState.ENDED, reason="done", now=1_800_000_074.0,
            outcome=Outcome.COMPLETED), "m")
        journal.ticket_closed("t_1", "session_completed", 1_800_000_074.0)
        journal.audit(actor="clerk:wangli", role="clerk", action="session.end",
                      object_type="queue", object_id="s_1", outcome="success")
        await journal.flush()
    finally:
        await journal.close()
    async with database.connect() as conn:
        row = (await conn.execute(sa.select(tables.service_sessions))).one()
        ticket = (await conn.execute(sa.select(tables.queue_tickets))).one()
        audit_rows = (await conn.execute(sa.select(tables.audit_log.c.action))).all()
    assert (row.state, row.outcome, row.end_reason) == ("ended", "completed", "done")
    assert row.wait_s == 12.0 and row.handle_s == 60.0
    assert row.matter == "EDU-TQ-CONFIRM"
    assert ticket.close_reason == "session_completed"
    assert [a.action for a in audit_rows] == ["session.end"]


async def test_a_burst_larger_than_a_chunk_lands_whole_and_in_order(database: Database) -> None:
    """Rows gather into one transaction and go out in executemany chunks: every row of a
    burst of several chunks lands, each ticket's close after its open."""
    journal = DbJournal(database)
    journal.start()
    count = 3 * CHUNK + 7
    try:
        for i in range(count):
            record = _ticket()
            record = TicketRecord(replace(record.ticket, id=f"t_{i}"), f"citizen:wx-{i}",
                                  "370500")
            journal.ticket_opened(record)
            if i % 2:
                journal.ticket_closed(f"t_{i}", "left", 1_800_000_100.0)
        await journal.flush()
        journal.ticket_closed("t_0", "late", 1_800_000_200.0)
        await journal.flush()
    finally:
        await journal.close()
    async with database.connect() as conn:
        rows = (await conn.execute(sa.select(tables.queue_tickets.c.id,
                                             tables.queue_tickets.c.close_reason))).all()
    reasons = {row.id: row.close_reason for row in rows}
    assert len(reasons) == count
    assert reasons["t_0"] == "late"
    assert all(reasons[f"t_{i}"] == "left" for i in range(1, count, 2))
    assert all(reasons[f"t_{i}"] is None for i in range(2, count, 2))
