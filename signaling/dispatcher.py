"""Matching waiting tickets to available clerks: a pure function of snapshots.

:func:`match` takes frozen tickets and clerks and returns offers; it never reads a
clock or a store. Several nodes may compute offers from the same snapshot and the
Redis store claims them atomically, so the result must depend only on the input:
every ordering ends in an id, never in set or dict iteration order.

Greedy in service order rather than an optimal assignment: each ticket, from the
head of the queue, takes the longest-idle free clerk that may serve it. That is
what makes the queue explainable to a citizen ("nobody who came after you and
needs the same clerk was served first") and it is linear in tickets x clerks. It
can leave a later ticket waiting that a cleverer assignment would have served;
fairness is worth that.

Missed offers. A clerk who declined a ticket or let its offer time out
(``Clerk.missed``) is not offered it again while any other clerk who could take it
is at work (available, offered, busy or wrap-up), even if that clerk is busy now:
the citizen waits a little for someone willing rather than bouncing back. If every
working eligible clerk has missed it, it is re-offered, because waiting cannot help;
the miss limit in :mod:`signaling.presence` puts a clerk who keeps refusing on
``away``, which ends such a loop. Clerks on break or away do not count as "at
work": nobody knows when they return. ``missed`` lives on the clerk snapshot; ids of
tickets that have ended are harmless there and the store may drop them.

Explicit assignment overrides skill and jurisdiction: a supervisor who names a
clerk is vouching for them, and a ticket assigned to a clerk who may not take it
would otherwise wait forever.

Snapshots read from several nodes can lag: a clerk named in some ticket's
``offered_to`` is treated as taken even if its own snapshot still says available.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from signaling.presence import WORKING, PresenceState
from signaling.tickets import (
    Channel,
    Pool,
    Priority,
    Ticket,
    build_pools,
    next_escalation_at,
    open_regions,
)

__all__ = [
    "DEFAULT_OFFER_TIMEOUT", "WILDCARD_SKILL", "Channel", "Clerk", "Offer", "Pool", "Priority",
    "Ticket", "build_pools", "eligible", "match", "next_escalation_at", "online_eligible",
    "positions", "service_order",
]

WILDCARD_SKILL = "*"
DEFAULT_OFFER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Clerk:
    """What the dispatcher knows of a clerk at one instant.

    ``skills`` holds matter codes, matter categories or ``"*"``; ``missed`` the ids
    of tickets this clerk declined or let time out.
    """

    id: str
    skills: frozenset[str]
    jurisdictions: frozenset[str]
    state: PresenceState
    idle_since: float | None = None
    sessions_today: int = 0
    missed: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Offer:
    ticket_id: str
    clerk_id: str
    expires_at: float


def eligible(clerk: Clerk, ticket: Ticket, now: float) -> bool:
    """Whether ``clerk`` may serve ``ticket`` at ``now``, whatever the clerk's state."""
    return _eligibility(ticket, open_regions(ticket, now))(clerk)


def _eligibility(ticket: Ticket, regions: frozenset[str]) -> Callable[[Clerk], bool]:
    """:func:`eligible` for one ticket whose open regions are ``regions``, with what depends
    only on the ticket worked out once: a dispatch asks it of every free clerk (100 calls
    per join in bench/pairing.py). A clerk is eligible by holding the matter's skill
    (its code, its category or the wildcard) and serving one of the regions, or by
    being the clerk the ticket is assigned to."""
    assigned = ticket.assigned_clerk
    if assigned is not None:
        return lambda clerk: clerk.id == assigned
    skills = frozenset({WILDCARD_SKILL, ticket.matter, ticket.category})
    return lambda clerk: (not clerk.skills.isdisjoint(skills)
                          and not clerk.jurisdictions.isdisjoint(regions))


def service_order(tickets: Iterable[Ticket]) -> list[Ticket]:
    """Tickets in the order they are served: class, requeued first, arrival, id."""
    return sorted(tickets, key=lambda t: t.service_key)


def _idle_order(clerk: Clerk) -> tuple[float, int, str]:
    idle = math.inf if clerk.idle_since is None else clerk.idle_since
    return (idle, clerk.sessions_today, clerk.id)


def match(
    tickets: Sequence[Ticket],
    clerks: Sequence[Clerk],
    now: float,
    paused_matters: Collection[str] = frozenset(),
    *,
    offer_timeout: float = DEFAULT_OFFER_TIMEOUT,
) -> list[Offer]:
    """Offers for this round, in service order; each clerk and ticket appears once at most."""
    taken = {t.offered_to for t in tickets if t.offered_to is not None}
    free = [c for c in clerks if c.state is PresenceState.AVAILABLE and c.id not in taken]
    offers: list[Offer] = []
    for ticket in service_order(tickets):
        if not free:
            break
        if ticket.offered_to is not None or ticket.matter in paused_matters:
            continue
        candidates = _candidates(ticket, clerks, free, now)
        if candidates:
            chosen = min(candidates, key=_idle_order)
            free.remove(chosen)
            offers.append(Offer(ticket.id, chosen.id, now + offer_timeout))
    return offers


def _candidates(
    ticket: Ticket, clerks: Sequence[Clerk], free: Sequence[Clerk], now: float
) -> list[Clerk]:
    may_serve = _eligibility(ticket, open_regions(ticket, now))
    able = [c for c in free if may_serve(c)]
    fresh = [c for c in able if ticket.id not in c.missed]
    if fresh or not able:
        return fresh
    someone_else_at_work = any(
        c.state in WORKING and ticket.id not in c.missed and may_serve(c) for c in clerks
    )
    return [] if someone_else_at_work else able


def online_eligible(ticket: Ticket, clerks: Iterable[Clerk], now: float) -> frozenset[str]:
    """Ids of clerks not offline who may serve ``ticket``; feeds the wait estimate."""
    may_serve = _eligibility(ticket, open_regions(ticket, now))
    return frozenset(c.id for c in clerks
                     if c.state is not PresenceState.OFFLINE and may_serve(c))


def positions(
    tickets: Sequence[Ticket],
    clerks: Sequence[Clerk],
    now: float,
    *,
    paused_matters: Collection[str] = frozenset(),
) -> dict[str, int]:
    """1-based place of each waiting ticket (one without an offer) in its own queue.

    A ticket's queue is the waiting tickets ahead of it in service order that could
    take one of the same online clerks. When no online clerk can take the ticket
    (in particular when nobody is online) the queue is the same matter's, which is
    who will go first once such a clerk arrives. Tickets of paused matters keep
    their own place but do not count ahead of others, since they are not served.
    """
    online = [c for c in clerks if c.state is not PresenceState.OFFLINE]
    waiting = [t for t in service_order(tickets) if t.offered_to is None]
    clerks_of = {t.id: online_eligible(t, online, now) for t in waiting}
    result: dict[str, int] = {}
    for index, ticket in enumerate(waiting):
        mine = clerks_of[ticket.id]
        ahead = sum(
            1 for other in waiting[:index]
            if other.matter not in paused_matters
            and (not mine.isdisjoint(clerks_of[other.id]) if mine
                 else other.matter == ticket.matter)
        )
        result[ticket.id] = ahead + 1
    return result
