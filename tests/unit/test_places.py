"""The fast places agree with the plain rule in ``dispatcher.positions``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.dispatcher import Clerk, online_eligible, positions
from signaling.places import queue_places
from signaling.presence import PresenceState
from signaling.tickets import Channel, Pool, Priority, Ticket

REGIONS = ("v1", "t1", "c1", "city", "p1")
MATTERS = (("m1", "edu"), ("m2", "edu"), ("m3", "biz"))
NOW = 100.0


@st.composite
def tickets(draw: st.DrawFn) -> list[Ticket]:
    count = draw(st.integers(0, 25))
    result = []
    for i in range(count):
        matter, category = draw(st.sampled_from(MATTERS))
        start = draw(st.integers(0, 3))
        pools = tuple(Pool(level, frozenset({code}))
                      for level, code in zip(("a", "b", "c", "d", "e"), REGIONS, strict=True))
        result.append(Ticket(
            id=f"t{i}", matter=matter, category=category, channel=Channel.MOBILE,
            priority=draw(st.sampled_from(list(Priority))),
            created_at=draw(st.floats(0, NOW)), escalation_seconds=draw(st.sampled_from(
                [5.0, 30.0, 1000.0])), pools=pools[start:],
            assigned_clerk=draw(st.sampled_from([None, None, None, "k0", "k1"])),
            requeued_at_head=draw(st.booleans()),
            offered_to=draw(st.sampled_from([None, None, None, "k2"])),
        ))
    return result


@st.composite
def clerks(draw: st.DrawFn) -> list[Clerk]:
    count = draw(st.integers(0, 6))
    return [Clerk(
        id=f"k{i}",
        skills=frozenset(draw(st.lists(st.sampled_from(["*", "m1", "m2", "m3", "edu", "biz"]),
                                       max_size=2))),
        jurisdictions=frozenset(draw(st.lists(st.sampled_from(REGIONS), max_size=2))),
        state=draw(st.sampled_from(list(PresenceState))),
    ) for i in range(count)]


@settings(max_examples=300, deadline=None)
@given(tickets(), clerks(), st.frozensets(st.sampled_from(["m1", "m2", "m3"]), max_size=1))
def test_queue_places_match_the_reference_rule(
    queue: list[Ticket], staff: list[Clerk], paused: frozenset[str]
) -> None:
    fast = queue_places(queue, staff, NOW, paused_matters=paused)
    assert {k: p.position for k, p in fast.items()} == positions(
        queue, staff, NOW, paused_matters=paused)
    online = [c for c in staff if c.state is not PresenceState.OFFLINE]
    for ticket in queue:
        if ticket.id in fast:
            assert fast[ticket.id].eligible_online == len(online_eligible(ticket, online, NOW))


def test_places_count_only_competing_tickets() -> None:
    pools = (Pool("city", frozenset({"city"})),)
    queue = [Ticket(f"t{i}", matter, "x", Channel.MOBILE, Priority.NORMAL, float(i), 60.0,
                    pools) for i, matter in enumerate(["m1", "m2", "m1"])]
    staff = [Clerk("edu", frozenset({"m1"}), frozenset({"city"}), PresenceState.AVAILABLE),
             Clerk("biz", frozenset({"m2"}), frozenset({"city"}), PresenceState.BUSY)]
    places = queue_places(queue, staff, 10.0)
    assert [(places[t].position, places[t].eligible_online) for t in ("t0", "t1", "t2")] == [
        (1, 1), (1, 1), (2, 1)]
