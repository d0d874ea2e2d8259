"""What the queue shows people: payloads for tickets, offers, sessions, the dashboard.

Pure functions of store records and the catalogue, so the wording and the figures a
citizen, a clerk and a supervisor see are tested without sockets.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from server.catalogue import KioskConfig
from signaling.estimate import HandleTimeAverager, estimate_wait_minutes, format_wait
from signaling.places import Place, queue_places
from signaling.sessions import Session
from signaling.store import ClerkRecord, TicketRecord
from signaling.tickets import Priority, widening_step


class QueueViews:
    def __init__(self, config: KioskConfig, averager: HandleTimeAverager) -> None:
        self.config = config
        self.averager = averager

    def _matter(self, code: str) -> dict[str, str]:
        matter = self.config.matter(code)
        return {"code": matter.code, "name_zh": matter.name_zh, "name_en": matter.name_en}

    def _hut(self, hut_id: str | None) -> dict[str, str] | None:
        if hut_id is None:
            return None
        hut = self.config.hut(hut_id)
        return {"id": hut.id, "name_zh": hut.name_zh, "name_en": hut.name_en}

    def waiting(self, records: list[TicketRecord], clerks: list[ClerkRecord],
                paused: frozenset[str], now: float) -> dict[str, dict[str, Any]]:
        """``queue.update`` payloads (plus ``owner``) for every ticket without an offer."""
        places = queue_places([r.ticket for r in records], [c.snapshot() for c in clerks], now,
                              paused_matters=paused)
        return {r.ticket.id: self._waiting_view(r, places[r.ticket.id], paused, now)
                for r in records if r.ticket.id in places}

    def ticket(self, record: TicketRecord, records: list[TicketRecord],
               clerks: list[ClerkRecord], paused: frozenset[str],
               now: float) -> dict[str, Any]:
        places = queue_places([r.ticket for r in records], [c.snapshot() for c in clerks], now,
                              paused_matters=paused)
        place = places.get(record.ticket.id)
        if place is None:
            return {"ticket_id": record.ticket.id, "state": "offered",
                    "matter": self._matter(record.ticket.matter),
                    "session_id": record.session_id}
        view = self._waiting_view(record, place, paused, now)
        view.pop("owner")
        return view

    def _waiting_view(self, record: TicketRecord, place: Place, paused: frozenset[str],
                      now: float) -> dict[str, Any]:
        ticket = record.ticket
        minutes = estimate_wait_minutes(place.position,
                                        self.averager.average_seconds(ticket.matter),
                                        place.eligible_online)
        return {
            "owner": record.owner,
            "ticket_id": ticket.id,
            "state": "paused" if ticket.matter in paused else "waiting",
            "matter": self._matter(ticket.matter),
            "position": place.position,
            "estimate_minutes": minutes,
            "estimate_text": format_wait(minutes),
            "level": ticket.pools[widening_step(ticket, now)].level,
        }

    def offer(self, session: Session, record: TicketRecord, now: float,
              timeout: float) -> dict[str, Any]:
        ticket = record.ticket
        return {
            "offer_id": session.session_id,
            "ticket_id": ticket.id,
            "matter": self._matter(ticket.matter),
            "channel": str(ticket.channel),
            "hut": self._hut(ticket.hut_id),
            "priority": str(ticket.priority),
            "waited_s": round(now - ticket.created_at, 1),
            "expires_in_s": timeout,
            "requeued": ticket.requeued_at_head,
        }

    def session_started(self, session: Session, record: TicketRecord,
                        clerk: ClerkRecord) -> dict[str, Any]:
        matter = self.config.matter(record.ticket.matter)
        return {
            "session_id": session.session_id,
            "ticket_id": record.ticket.id,
            "matter": self._matter(matter.code),
            "materials": [m.model_dump(mode="json") for m in matter.materials],
            "channel": str(record.ticket.channel),
            "hut": self._hut(record.ticket.hut_id),
            "clerk": {"id": clerk.id, "display_name": clerk.display_name},
            "citizen": record.owner.partition(":")[0],
        }

    @staticmethod
    def clerk(record: ClerkRecord) -> dict[str, Any]:
        return {"clerk_id": record.id, "state": str(record.state),
                "offer_id": record.offer_id, "session_id": record.session_id,
                "sessions_today": record.sessions_today}

    def overview(self, records: list[TicketRecord],
                 paused: frozenset[str]) -> list[dict[str, Any]]:
        """What every clerk sees of the queue: waiting per matter (no timings, so it only
        changes when the queue does)."""
        waiting = Counter(r.ticket.matter for r in records if r.ticket.offered_to is None)
        priority = Counter(r.ticket.matter for r in records if r.ticket.offered_to is None
                           and r.ticket.priority is Priority.PRIORITY)
        return [{**self._matter(code), "waiting": waiting[code],
                 "priority_waiting": priority[code], "paused": code in paused}
                for code in sorted(set(waiting) | paused)]

    def dashboard(self, records: list[TicketRecord], clerks: list[ClerkRecord],
                  paused: frozenset[str], now: float) -> dict[str, Any]:
        waiting = [r.ticket for r in records if r.ticket.offered_to is None]
        per_matter = Counter(t.matter for t in waiting)
        priority = Counter(t.matter for t in waiting if t.priority is Priority.PRIORITY)
        longest: dict[str, float] = {}
        levels: dict[str, Counter[str]] = {}
        for t in waiting:
            longest[t.matter] = max(longest.get(t.matter, 0.0), now - t.created_at)
            levels.setdefault(t.matter, Counter())[t.pools[widening_step(t, now)].level] += 1
        matters = sorted(set(per_matter) | paused)
        return {
            "at": now,
            "queues": [{**self._matter(code), "waiting": per_matter[code],
                        "priority_waiting": priority[code],
                        "longest_wait_s": round(longest.get(code, 0.0), 1),
                        "by_level": dict(levels.get(code, {})),
                        "paused": code in paused} for code in matters],
            "clerks": [{"id": c.id, "display_name": c.display_name, "state": str(c.state),
                        "sessions_today": c.sessions_today}
                       for c in sorted(clerks, key=lambda c: c.id)],
            "tickets": [{"ticket_id": t.id, "matter": t.matter, "priority": str(t.priority),
                         "waited_s": round(now - t.created_at, 1),
                         "assigned_clerk": t.assigned_clerk}
                        for t in sorted(waiting, key=lambda t: t.service_key)],
        }
