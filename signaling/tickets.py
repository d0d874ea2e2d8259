"""Tickets and the jurisdiction pools they widen through.

A ticket carries its pools, not its region: which levels can handle a matter and
which partner cities take it are decided once, at ``queue.join``, by
:func:`build_pools`, so the dispatcher never needs the region tree or the matter
catalogue and stays a function of snapshots.

Pools are cumulative: at widening step ``k`` the ticket is open to the union of
``pools[0..k]``, so a clerk of the ticket's own township stays eligible after the
ticket has widened to the county. Time, not a counter, drives widening, so every
node computing it from the same snapshot agrees without coordination.

A ticket is frozen; the store replaces it (``dataclasses.replace``) when it gets
or loses an offer, is assigned by a supervisor, or is requeued at the head.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from server.errors import BadRequest

PARTNER_LEVEL = "partner"


class Channel(StrEnum):
    KIOSK = "kiosk"
    MOBILE = "mobile"


class Priority(StrEnum):
    """Service class; declaration order is service order (elderly and disabled first)."""

    PRIORITY = "priority"
    NORMAL = "normal"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


@dataclass(frozen=True, slots=True)
class Pool:
    """The region codes whose clerks may serve a ticket once this level is open."""

    level: str
    regions: frozenset[str]

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError(f"pool {self.level!r}: regions must not be empty")


def build_pools(
    region_chain: Sequence[tuple[str, str]],
    matter_levels: Collection[str],
    partner_codes: Collection[str],
) -> tuple[Pool, ...]:
    """Pools for a citizen in ``region_chain`` (``(code, level)``, lowest level first).

    Levels where the matter cannot be handled are skipped; partner cities, if any,
    form the last pool. Raises ``BadRequest`` (``matter_unavailable``) when nobody
    anywhere could take the ticket, because such a ticket would wait forever.
    """
    pools = [Pool(level, frozenset({code})) for code, level in region_chain
             if level in matter_levels]
    if partner_codes:
        pools.append(Pool(PARTNER_LEVEL, frozenset(partner_codes)))
    if not pools:
        raise BadRequest(
            "此事项在本地不能办理",
            "this matter cannot be handled for this region",
            code="matter_unavailable",
            detail={"levels": sorted(matter_levels),
                    "region_chain": [code for code, _ in region_chain]},
        )
    return tuple(pools)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A citizen waiting for one matter.

    ``assigned_clerk``: a supervisor sent the ticket to that clerk; only they may
    take it. ``requeued_at_head``: the ticket's clerk was lost mid-session, so it goes
    ahead of every ticket of its class that was not requeued. ``offered_to``: the
    clerk currently holding an offer for it.
    """

    id: str
    matter: str
    category: str
    channel: Channel
    priority: Priority
    created_at: float
    escalation_seconds: float
    pools: tuple[Pool, ...]
    hut_id: str | None = None
    assigned_clerk: str | None = None
    requeued_at_head: bool = False
    offered_to: str | None = None

    def __post_init__(self) -> None:
        if not self.escalation_seconds > 0:
            raise ValueError(f"ticket {self.id}: escalation_seconds must be positive, "
                             f"got {self.escalation_seconds}")
        if not self.pools:
            raise ValueError(f"ticket {self.id}: pools must not be empty")
        if self.channel is Channel.KIOSK and self.hut_id is None:
            raise ValueError(f"ticket {self.id}: hut_id is required for channel kiosk")

    @property
    def service_key(self) -> tuple[int, int, float, str]:
        """Sort key of service order: class, requeued first, arrival, id."""
        return (self.priority.rank, 0 if self.requeued_at_head else 1, self.created_at, self.id)


def widening_step(ticket: Ticket, now: float) -> int:
    """Index of the highest open pool at ``now``."""
    last = len(ticket.pools) - 1
    if now <= ticket.created_at or last == 0:
        return 0
    step = math.floor((now - ticket.created_at) / ticket.escalation_seconds)
    # Division rounds; settle on the same boundary next_escalation_at reports, so a
    # shell woken exactly at that time always sees the wider pool.
    while step > 0 and _opens_at(ticket, step) > now:
        step -= 1
    while step < last and _opens_at(ticket, step + 1) <= now:
        step += 1
    return min(step, last)


def _opens_at(ticket: Ticket, step: int) -> float:
    return ticket.created_at + step * ticket.escalation_seconds


def open_regions(ticket: Ticket, now: float) -> frozenset[str]:
    """Union of the regions of every pool open at ``now``."""
    step = widening_step(ticket, now)
    return frozenset().union(*(pool.regions for pool in ticket.pools[: step + 1]))


def next_escalation_at(ticket: Ticket, now: float) -> float | None:
    """When the next pool opens, or ``None`` if widening can no longer change anything.

    Takes ``now`` because the answer depends on how far the ticket has widened; an
    assigned ticket never widens since pools do not apply to it.
    """
    if ticket.assigned_clerk is not None:
        return None
    step = widening_step(ticket, now)
    if step >= len(ticket.pools) - 1:
        return None
    return _opens_at(ticket, step + 1)
