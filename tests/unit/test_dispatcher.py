from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pytest

from server.errors import BadRequest
from signaling.dispatcher import (
    Channel,
    Clerk,
    Offer,
    Pool,
    Priority,
    Ticket,
    build_pools,
    eligible,
    match,
    next_escalation_at,
    online_eligible,
    positions,
    service_order,
)
from signaling.presence import PresenceState

S = PresenceState
CHAIN = [("V1", "village"), ("T1", "township"), ("K1", "county"), ("C1", "city")]
ALL_LEVELS = ("village", "township", "county", "city")


def ticket(
    id: str = "t1",
    *,
    matter: str = "m1",
    category: str = "civil",
    priority: Priority = Priority.NORMAL,
    created_at: float = 0.0,
    escalation_seconds: float = 60.0,
    pools: tuple[Pool, ...] | None = None,
    assigned_clerk: str | None = None,
    requeued_at_head: bool = False,
    offered_to: str | None = None,
) -> Ticket:
    return Ticket(
        id=id, matter=matter, category=category, channel=Channel.KIOSK, hut_id="hut-1",
        priority=priority, created_at=created_at, escalation_seconds=escalation_seconds,
        pools=pools if pools is not None else build_pools(CHAIN, ALL_LEVELS, ()),
        assigned_clerk=assigned_clerk, requeued_at_head=requeued_at_head,
        offered_to=offered_to,
    )


def clerk(
    id: str = "c1",
    *,
    skills: Iterable[str] = ("*",),
    jurisdictions: Iterable[str] = ("V1",),
    state: PresenceState = S.AVAILABLE,
    idle_since: float | None = 0.0,
    sessions_today: int = 0,
    missed: Iterable[str] = (),
) -> Clerk:
    return Clerk(id=id, skills=frozenset(skills), jurisdictions=frozenset(jurisdictions),
                 state=state, idle_since=idle_since, sessions_today=sessions_today,
                 missed=frozenset(missed))


def pairs(offers: list[Offer]) -> list[tuple[str, str]]:
    return [(o.ticket_id, o.clerk_id) for o in offers]


# --- pools and widening ------------------------------------------------------------

def test_build_pools_keeps_levels_of_the_matter_and_puts_partners_last() -> None:
    pools = build_pools(CHAIN, {"county", "village"}, ["P9", "P8"])
    assert pools == (Pool("village", frozenset({"V1"})), Pool("county", frozenset({"K1"})),
                     Pool("partner", frozenset({"P8", "P9"})))


def test_build_pools_without_partners() -> None:
    assert build_pools(CHAIN, {"city"}, []) == (Pool("city", frozenset({"C1"})),)


def test_build_pools_refuses_a_matter_nobody_can_take() -> None:
    with pytest.raises(BadRequest) as info:
        build_pools(CHAIN, {"province"}, [])
    assert info.value.code == "matter_unavailable"
    assert info.value.detail == {"levels": ["province"], "region_chain": ["V1", "T1", "K1", "C1"]}


def test_ticket_validates_its_fields() -> None:
    with pytest.raises(ValueError, match="ticket t1: escalation_seconds must be positive, got 0"):
        ticket(escalation_seconds=0)
    with pytest.raises(ValueError, match="ticket t1: pools must not be empty"):
        ticket(pools=())
    with pytest.raises(ValueError, match="hut_id is required for channel kiosk"):
        replace(ticket(), hut_id=None)
    assert replace(ticket(), channel=Channel.MOBILE, hut_id=None).hut_id is None
    with pytest.raises(ValueError, match="pool 'city': regions must not be empty"):
        Pool("city", frozenset())


@pytest.mark.parametrize(("now", "reachable"), [
    (-5.0, {"V1"}), (0.0, {"V1"}), (59.9, {"V1"}), (60.0, {"V1", "T1"}),
    (150.0, {"V1", "T1", "K1"}), (180.0, {"V1", "T1", "K1", "C1"}),
    (10_000.0, {"V1", "T1", "K1", "C1"}),
])
def test_widening_opens_one_level_per_escalation_period(now: float, reachable: set[str]) -> None:
    t = ticket()
    got = {code for code in ("V1", "T1", "K1", "C1")
           if eligible(clerk(jurisdictions=[code]), t, now)}
    assert got == reachable


def test_partner_pool_opens_last() -> None:
    t = ticket(pools=build_pools(CHAIN, {"county", "city"}, ["P1"]))
    partner = clerk("p", jurisdictions=["P1"])
    assert not eligible(partner, t, 60.0)
    assert eligible(clerk(jurisdictions=["C1"]), t, 60.0)
    assert eligible(partner, t, 120.0)


def test_next_escalation_at() -> None:
    t = ticket(created_at=10.0)
    assert next_escalation_at(t, 10.0) == 70.0
    assert next_escalation_at(t, 69.0) == 70.0
    assert next_escalation_at(t, 70.0) == 130.0
    assert next_escalation_at(t, 190.0) is None
    assert next_escalation_at(ticket(pools=build_pools(CHAIN, {"city"}, [])), 0.0) is None
    assert next_escalation_at(ticket(assigned_clerk="c1"), 0.0) is None


def test_escalation_boundary_survives_float_rounding() -> None:
    # (0.2 + 3 * 29.9 - 0.2) / 29.9 < 3 in binary floating point. Woken at the
    # reported time, the shell must see the wider pool, or it would be woken for
    # the same instant again and again.
    t = ticket(created_at=0.2, escalation_seconds=29.9)
    now, opened = 0.2, []
    while (wake := next_escalation_at(t, now)) is not None:
        assert wake > now
        now = wake
        opened.append([c for c in ("T1", "K1", "C1") if eligible(clerk(jurisdictions=[c]), t, now)])
    assert opened == [["T1"], ["T1", "K1"], ["T1", "K1", "C1"]]


# --- eligibility ---------------------------------------------------------------------

@pytest.mark.parametrize(("skills", "ok"), [
    (["m1"], True), (["civil"], True), (["*"], True), (["m2", "tax"], False), ([], False),
])
def test_skill_by_code_category_or_wildcard(skills: list[str], ok: bool) -> None:
    assert eligible(clerk(skills=skills), ticket(), 0.0) is ok


def test_jurisdiction_must_meet_an_open_pool() -> None:
    assert not eligible(clerk(jurisdictions=["V2", "T9"]), ticket(), 0.0)


def test_explicit_assignment_means_only_that_clerk_and_overrides_skill() -> None:
    t = ticket(assigned_clerk="c2")
    assert not eligible(clerk("c1"), t, 0.0)
    assert eligible(clerk("c2", skills=["tax"], jurisdictions=["X"]), t, 0.0)
    offers = match([t], [clerk("c1", idle_since=0.0), clerk("c2", idle_since=50.0)], 100.0)
    assert pairs(offers) == [("t1", "c2")]


# --- match: ordering ---------------------------------------------------------------

def test_priority_class_is_served_first() -> None:
    tickets = [ticket("t1", created_at=0.0),
               ticket("t2", created_at=5.0, priority=Priority.PRIORITY)]
    assert pairs(match(tickets, [clerk()], 10.0)) == [("t2", "c1")]


def test_arrival_order_then_id_within_a_class() -> None:
    tickets = [ticket("t3", created_at=2.0), ticket("t2", created_at=1.0),
               ticket("t1", created_at=2.0)]
    assert [t.id for t in service_order(tickets)] == ["t2", "t1", "t3"]
    assert pairs(match(tickets, [clerk()], 10.0)) == [("t2", "c1")]


def test_requeued_ticket_goes_to_the_head_of_its_class_only() -> None:
    tickets = [ticket("t1", created_at=0.0), ticket("t2", created_at=30.0, requeued_at_head=True),
               ticket("t3", created_at=40.0, priority=Priority.PRIORITY)]
    assert [t.id for t in service_order(tickets)] == ["t3", "t2", "t1"]
    assert pairs(match(tickets, [clerk("a"), clerk("b")], 50.0)) == [("t3", "a"), ("t2", "b")]


def test_longest_idle_clerk_gets_the_ticket() -> None:
    clerks = [clerk("a", idle_since=30.0), clerk("b", idle_since=10.0),
              clerk("c", idle_since=20.0)]
    assert pairs(match([ticket()], clerks, 40.0)) == [("t1", "b")]


def test_idle_tie_goes_to_fewest_sessions_then_id() -> None:
    clerks = [clerk("a", sessions_today=3), clerk("c", sessions_today=1),
              clerk("b", sessions_today=1)]
    assert pairs(match([ticket()], clerks, 40.0)) == [("t1", "b")]


def test_clerk_with_unknown_idle_time_goes_last() -> None:
    clerks = [clerk("a", idle_since=None), clerk("b", idle_since=35.0)]
    assert pairs(match([ticket()], clerks, 40.0)) == [("t1", "b")]


def test_each_clerk_gets_one_offer_and_offers_expire() -> None:
    tickets = [ticket("t1"), ticket("t2", created_at=1.0), ticket("t3", created_at=2.0)]
    clerks = [clerk("a", idle_since=5.0), clerk("b", idle_since=1.0)]
    offers = match(tickets, clerks, 10.0, offer_timeout=15.0)
    assert offers == [Offer("t1", "b", 25.0), Offer("t2", "a", 25.0)]


def test_only_available_clerks_get_offers() -> None:
    clerks = [clerk(str(state), state=state) for state in S if state is not S.AVAILABLE]
    assert match([ticket()], clerks, 0.0) == []


def test_ineligible_clerk_is_passed_over_for_a_later_ticket() -> None:
    tickets = [ticket("t1", matter="m1"), ticket("t2", matter="m2", created_at=1.0)]
    assert pairs(match(tickets, [clerk(skills=["m2"])], 5.0)) == [("t2", "c1")]


def test_tickets_holding_an_offer_and_their_clerks_are_skipped() -> None:
    tickets = [ticket("t1", offered_to="a"), ticket("t2", created_at=1.0)]
    # a's snapshot lags behind the ticket's: it is still taken.
    clerks = [clerk("a", idle_since=0.0), clerk("b", idle_since=9.0)]
    assert pairs(match(tickets, clerks, 10.0)) == [("t2", "b")]


def test_paused_matter_gets_no_offer() -> None:
    tickets = [ticket("t1", matter="m1"), ticket("t2", matter="m2", created_at=1.0)]
    assert pairs(match(tickets, [clerk()], 5.0, frozenset({"m1"}))) == [("t2", "c1")]


def test_widened_ticket_reaches_the_county_clerk() -> None:
    county = clerk("k", jurisdictions=["K1"])
    assert match([ticket()], [county], 119.0) == []
    assert pairs(match([ticket()], [county], 120.0)) == [("t1", "k")]


# --- match: missed offers ------------------------------------------------------------

def test_ticket_is_not_reoffered_to_a_clerk_who_missed_it() -> None:
    clerks = [clerk("a", idle_since=0.0, missed={"t1"}), clerk("b", idle_since=5.0)]
    assert pairs(match([ticket()], clerks, 10.0)) == [("t1", "b")]


def test_ticket_waits_for_a_busy_clerk_rather_than_returning_to_one_who_missed_it() -> None:
    clerks = [clerk("a", missed={"t1"}), clerk("b", state=S.BUSY)]
    assert match([ticket()], clerks, 10.0) == []


def test_ticket_is_reoffered_when_everyone_at_work_has_missed_it() -> None:
    clerks = [clerk("a", missed={"t1"}), clerk("b", state=S.BREAK),
              clerk("c", state=S.BUSY, missed={"t1"}), clerk("d", jurisdictions=["X"])]
    assert pairs(match([ticket()], clerks, 10.0)) == [("t1", "a")]


def test_missed_clerk_still_serves_other_tickets() -> None:
    tickets = [ticket("t1"), ticket("t2", created_at=1.0)]
    clerks = [clerk("a", missed={"t1"}), clerk("b", state=S.WRAP_UP)]
    assert pairs(match(tickets, clerks, 10.0)) == [("t2", "a")]


# --- positions -------------------------------------------------------------------------

def test_positions_count_only_tickets_competing_for_the_same_clerks() -> None:
    tickets = [ticket("t1", matter="m1"), ticket("t2", matter="m2", created_at=1.0),
               ticket("t3", matter="m1", created_at=2.0), ticket("t4", matter="m3", created_at=3.0)]
    clerks = [clerk("a", skills=["m1"], state=S.BUSY), clerk("b", skills=["m2", "m3"],
                                                             state=S.BREAK)]
    assert positions(tickets, clerks, 5.0) == {"t1": 1, "t2": 1, "t3": 2, "t4": 2}


def test_positions_ignore_offline_clerks_and_fall_back_to_same_matter() -> None:
    tickets = [ticket("t1", matter="m1"), ticket("t2", matter="m2", created_at=1.0),
               ticket("t3", matter="m1", created_at=2.0)]
    clerks = [clerk("a", state=S.OFFLINE)]
    assert positions(tickets, clerks, 5.0) == {"t1": 1, "t2": 1, "t3": 2}
    assert positions(tickets, [], 5.0) == {"t1": 1, "t2": 1, "t3": 2}
    nobody_for_these = [clerk("z", skills=["tax"], state=S.BUSY)]
    assert positions(tickets, nobody_for_these, 5.0) == {"t1": 1, "t2": 1, "t3": 2}


def test_positions_follow_service_order_and_skip_offered_and_paused() -> None:
    tickets = [ticket("t1", offered_to="a"), ticket("t2", created_at=1.0),
               ticket("t3", created_at=2.0, priority=Priority.PRIORITY),
               ticket("t4", created_at=3.0, matter="m9")]
    clerks = [clerk("a", state=S.OFFERED), clerk("b", state=S.BUSY)]
    assert positions(tickets, clerks, 5.0, paused_matters={"m9"}) == {
        "t3": 1, "t2": 2, "t4": 3}
    assert positions([*tickets[:3], replace(tickets[3], created_at=0.5)], clerks, 5.0,
                     paused_matters={"m9"}) == {"t3": 1, "t4": 2, "t2": 2}


def test_online_eligible() -> None:
    clerks = [clerk("a"), clerk("b", state=S.BREAK), clerk("c", state=S.OFFLINE),
              clerk("d", skills=["tax"])]
    assert online_eligible(ticket(), clerks, 0.0) == {"a", "b"}
