"""Figures of the pairing benchmark from the workers' raw records. Pure functions.

Times are ``time.monotonic()`` seconds taken in different processes of one machine
(Linux ``CLOCK_MONOTONIC`` is system-wide), so a citizen's send time and a clerk's
receive time can be subtracted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]
Offer = tuple[str, float, str]
"""(ticket_id, received, clerk)"""
Release = tuple[str, str, float, float, str]
"""(clerk, released by, released at, next offer received, its ticket_id)"""


@dataclass(frozen=True)
class Summary:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    def __str__(self) -> str:
        return (f"p50 {self.p50_ms:8.2f}  p99 {self.p99_ms:8.2f}  max {self.max_ms:8.2f} ms"
                f"  (n={self.count})")


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks; ``ordered`` sorted ascending."""
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(seconds: Iterable[float]) -> Summary | None:
    ordered = sorted(seconds)
    if not ordered:
        return None
    return Summary(len(ordered), round(percentile(ordered, 0.5) * 1000, 2),
                   round(percentile(ordered, 0.99) * 1000, 2), round(ordered[-1] * 1000, 2))


def first_offers(offers: Iterable[Offer]) -> dict[str, float]:
    """When the first offer of each ticket reached a clerk."""
    first: dict[str, float] = {}
    for ticket_id, received, _ in offers:
        if ticket_id not in first or received < first[ticket_id]:
            first[ticket_id] = received
    return first


def offer_latencies(joins: Iterable[Record], first: dict[str, float],
                    phase: str) -> list[float]:
    """``queue.join`` sent -> the clerk has the ``offer``, per ticket of ``phase``."""
    return [first[j["ticket_id"]] - j["sent"] for j in joins
            if j["phase"] == phase and j["ticket_id"] in first]


def offer_latencies_by_node(joins: Iterable[Record], first: dict[str, float], phase: str,
                            procs: int, nodes: int) -> list[list[float]]:
    """``offer_latencies`` split by the node the citizen was connected to: citizen
    ``bench-<i>`` belongs to process i mod ``procs``, which connects to node (process mod
    ``nodes``) (bench/pairing.py)."""
    split: list[list[float]] = [[] for _ in range(nodes)]
    for j in joins:
        if j["phase"] == phase and j["ticket_id"] in first:
            index = int(str(j["citizen"]).rsplit("-", 1)[1])
            split[(index % procs) % nodes].append(first[j["ticket_id"]] - j["sent"])
    return split


def ack_latencies(joins: Iterable[Record], phase: str) -> list[float]:
    return [j["acked"] - j["sent"] for j in joins
            if j["phase"] == phase and j["acked"] is not None and j["error"] is None]


def next_offer_latencies(releases: Iterable[Release],
                         joins: Iterable[Record]) -> dict[str, list[float]]:
    """Clerk released -> its next offer, only when that ticket was already queued (its join
    acknowledged) before the release: then the clerk was the one waited for. Keyed
    ``"after a citizen"`` (session.end / wrapup.done sent), ``"back from break"``
    (presence.set sent) and ``"presence event"`` (``presence: available`` received)."""
    queued_at = {j["ticket_id"]: j["acked"] for j in joins if j["ticket_id"] is not None}
    found: dict[str, list[float]] = {"after a citizen": [], "back from break": [],
                                     "presence event": []}
    keys = {"presence.set": "back from break", "presence event": "presence event"}
    for _, released_by, released_at, received, ticket_id in releases:
        acked = queued_at.get(ticket_id)
        if acked is None or acked >= released_at:
            continue
        found[keys.get(released_by, "after a citizen")].append(received - released_at)
    return found


def by_position(joins: Iterable[Record], phase: str,
                edges: Sequence[int]) -> list[tuple[str, Summary]]:
    """Ack latency of the joins of ``phase`` grouped by the position they got."""
    rows: list[tuple[str, Summary]] = []
    joined = [j for j in joins if j["phase"] == phase and j["position"] is not None]
    for low, high in itertools.pairwise(edges):
        found = summarize(j["acked"] - j["sent"] for j in joined if low <= j["position"] < high)
        if found is not None:
            rows.append((f"{low}-{high - 1}", found))
    return rows


def by_window(joins: Iterable[Record], first: dict[str, float], phase: str,
              width: float) -> list[tuple[int, float]]:
    """Joins and their median offer latency (ms; ``inf`` when most never got an offer) per
    ``width`` seconds of sending, in order: how the latency evolved during the phase."""
    sent = [(j["sent"], first.get(j["ticket_id"] or "")) for j in joins if j["phase"] == phase]
    if not sent:
        return []
    start = min(t for t, _ in sent)
    buckets: dict[int, list[float]] = {}
    for t, offered in sent:
        buckets.setdefault(int((t - start) // width), []).append(
            math.inf if offered is None else offered - t)
    return [(len(found), sorted(found)[len(found) // 2] * 1000)
            for _, found in sorted(buckets.items())]


def ms(summary: Summary | None, field: str) -> float | None:
    return None if summary is None else float(getattr(summary, field))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)
