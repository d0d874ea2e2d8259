"""The queue's records as JSON, for stores that keep them outside the process (Redis).

Pure: values in, strings out, and back. Floats go through ``repr`` (``json`` does that),
so a timestamp read back is the same float and service order does not drift between
nodes. Sets are written sorted, so one record always has one encoding: the Redis store
compares raw strings to skip decoding records that did not change.

A ticket's offer (``offered_to`` and ``session_id``) is *not* part of the ticket's JSON:
the Redis store keeps it in a hash of its own, so the atomic claim script can check and
set it without decoding and re-encoding the ticket (Lua's cjson would round timestamps
to 14 digits).
"""

from __future__ import annotations

import json
from typing import Any

from signaling.presence import PresenceState
from signaling.sessions import Outcome, Session, SessionState
from signaling.store import ClerkRecord, TicketRecord
from signaling.tickets import Channel, Pool, Priority, Ticket


def _dumps(value: dict[str, Any] | list[Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_ticket(record: TicketRecord) -> str:
    """The ticket and its owner, without the offer (see :func:`encode_offer`)."""
    t = record.ticket
    return _dumps({
        "id": t.id, "matter": t.matter, "category": t.category, "channel": str(t.channel),
        "priority": str(t.priority), "created_at": t.created_at,
        "escalation_seconds": t.escalation_seconds,
        "pools": [[p.level, sorted(p.regions)] for p in t.pools],
        "hut_id": t.hut_id, "assigned_clerk": t.assigned_clerk,
        "requeued_at_head": t.requeued_at_head, "owner": record.owner,
        "region": record.region,
    })


def encode_offer(record: TicketRecord) -> str | None:
    """``[offered_to, session_id]``, or None when the ticket has neither."""
    if record.ticket.offered_to is None and record.session_id is None:
        return None
    return _dumps([record.ticket.offered_to, record.session_id])


def offer_value(clerk_id: str, session_id: str) -> str:
    """The offer entry a successful claim writes."""
    return _dumps([clerk_id, session_id])


def decode_ticket(raw: str | bytes, offer: str | bytes | None) -> TicketRecord:
    data = json.loads(raw)
    offered_to, session_id = json.loads(offer) if offer is not None else (None, None)
    ticket = Ticket(
        id=data["id"], matter=data["matter"], category=data["category"],
        channel=Channel(data["channel"]), priority=Priority(data["priority"]),
        created_at=float(data["created_at"]),
        escalation_seconds=float(data["escalation_seconds"]),
        pools=tuple(Pool(level, frozenset(regions)) for level, regions in data["pools"]),
        hut_id=data["hut_id"], assigned_clerk=data["assigned_clerk"],
        requeued_at_head=bool(data["requeued_at_head"]), offered_to=offered_to,
    )
    return TicketRecord(ticket, data["owner"], data["region"], session_id)


def encode_clerk(record: ClerkRecord) -> str:
    return _dumps({
        "id": record.id, "display_name": record.display_name,
        "skills": sorted(record.skills), "jurisdictions": sorted(record.jurisdictions),
        "state": str(record.state), "consecutive_misses": record.consecutive_misses,
        "idle_since": record.idle_since, "sessions_today": record.sessions_today,
        "missed": sorted(record.missed), "offer_id": record.offer_id,
        "session_id": record.session_id, "wrap_up_until": record.wrap_up_until,
    })


def decode_clerk(raw: str | bytes) -> ClerkRecord:
    data = json.loads(raw)
    return ClerkRecord(
        data["id"], data["display_name"], frozenset(data["skills"]),
        frozenset(data["jurisdictions"]), state=PresenceState(data["state"]),
        consecutive_misses=int(data["consecutive_misses"]), idle_since=data["idle_since"],
        sessions_today=int(data["sessions_today"]), missed=frozenset(data["missed"]),
        offer_id=data["offer_id"], session_id=data["session_id"],
        wrap_up_until=data.get("wrap_up_until"),  # absent in records of older nodes
    )


def encode_session(session: Session) -> str:
    return _dumps({
        "session_id": session.session_id, "ticket_id": session.ticket_id,
        "clerk_id": session.clerk_id, "ticket_created_at": session.ticket_created_at,
        "state": str(session.state),
        "entered": {str(state): at for state, at in session.entered.items()},
        "outcome": None if session.outcome is None else str(session.outcome),
        "end_reason": session.end_reason, "media_node": session.media_node,
    })


def decode_session(raw: str | bytes) -> Session:
    data = json.loads(raw)
    entered = {SessionState(state): float(at) for state, at in data["entered"].items()}
    return Session(
        data["session_id"], ticket_id=data["ticket_id"], clerk_id=data["clerk_id"],
        ticket_created_at=float(data["ticket_created_at"]),
        offered_at=entered[SessionState.OFFERED], state=SessionState(data["state"]),
        entered=entered,
        outcome=None if data["outcome"] is None else Outcome(data["outcome"]),
        end_reason=data["end_reason"], media_node=data.get("media_node"),
    )
