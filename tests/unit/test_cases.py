"""Case rules without a database: identity numbers, the status machine, the checklist,
case numbers and who may see what."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from server.case_access import Need, authorize
from server.case_records import CaseRecord
from server.cases import (
    ALLOWED,
    CaseStatus,
    SlotSpec,
    checklist,
    format_number,
    number_scope,
    slots_for,
    started,
    transition,
)
from server.catalogue_loader import load_kiosk_config
from server.errors import XiaowuError
from server.identity_numbers import check_character, mask, validate
from server.principals import Principal
from server.settings import DEFAULT_CONFIG_DIR

VALID = "11010519491231002X"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def code_of(call: object, *args: object, **kwargs: object) -> str:
    assert callable(call)
    with pytest.raises(XiaowuError) as caught:
        call(*args, **kwargs)
    return caught.value.code


# ---- identity numbers -----------------------------------------------------------------

def test_a_valid_number_is_normalized() -> None:
    assert validate(" 110105 19491231 002x ") == VALID
    assert check_character("37010219900307123") == "8"


@pytest.mark.parametrize(("raw", "reason"), [
    ("11010519491231002", "length"),
    ("1101051949123100XX", "characters"),
    ("01010519491231002X", "address_code"),
    ("110105194913310028", "birth_date"),
    ("110105" + "21000101" + "0011", "birth_date"),
    ("110105" + "18991231" + "0011", "birth_date"),
])
def test_a_malformed_number_names_what_is_wrong(raw: str, reason: str) -> None:
    with pytest.raises(XiaowuError) as caught:
        validate(raw, today=date(2026, 11, 24))
    assert caught.value.code == "id_number_invalid"
    assert caught.value.detail == {"field": "id_number", "reason": reason}


def test_every_single_digit_typo_and_neighbour_swap_is_caught() -> None:
    body = VALID[:-1]
    for index, digit in itertools.product(range(17), "0123456789"):
        typo = body[:index] + digit + body[index + 1:]
        if typo != body:
            assert check_character(typo) != "X"
    for index in range(16):
        swapped = body[:index] + body[index + 1] + body[index] + body[index + 2:]
        if swapped != body:
            assert check_character(swapped) != "X"


def test_masking_keeps_four_and_four() -> None:
    assert mask("370102199003071238") == "3701**********1238"
    assert mask(None) is None
    assert mask("1234") == "****"


# ---- status machine -------------------------------------------------------------------

def slot(key: str, required: bool = True) -> SlotSpec:
    return SlotSpec(key, 0, key, required, key, key, None)


def test_transitions_follow_the_table_and_name_the_current_state() -> None:
    for current, requested in itertools.product(CaseStatus, CaseStatus):
        if requested in ALLOWED[current]:
            assert transition(current, requested, reason="why") is requested
            continue
        with pytest.raises(XiaowuError) as caught:
            transition(current, requested, reason="why")
        assert caught.value.code == "invalid_transition"
        assert caught.value.detail == {"current": str(current), "requested": str(requested)}


def test_completion_needs_every_required_slot_filled_or_waived() -> None:
    specs = [slot("id_card_front"), slot("diploma"), slot("certificate", required=False)]
    slots = checklist(specs, {"id_card_front": 2}, {})
    with pytest.raises(XiaowuError) as caught:
        transition(CaseStatus.IN_PROGRESS, CaseStatus.COMPLETED, slots=slots)
    assert caught.value.code == "checklist_incomplete"
    assert caught.value.detail == {"missing": ["diploma"]}

    slots = checklist(specs, {"id_card_front": 2}, {"diploma": "verified online"})
    assert [s.state for s in slots] == ["filled", "waived", "empty"]
    assert transition(CaseStatus.IN_PROGRESS, CaseStatus.COMPLETED,
                      slots=slots) is CaseStatus.COMPLETED


def test_rejection_needs_a_reason_and_a_draft_starts_on_its_first_change() -> None:
    assert code_of(transition, CaseStatus.IN_PROGRESS, CaseStatus.REJECTED,
                   reason="  ") == "reason_required"
    assert started(CaseStatus.DRAFT) is CaseStatus.IN_PROGRESS
    assert started(CaseStatus.IN_PROGRESS) is CaseStatus.IN_PROGRESS
    assert code_of(started, CaseStatus.COMPLETED) == "case_closed"


def test_slots_come_from_the_matter_and_a_repeated_kind_gets_numbered() -> None:
    config = load_kiosk_config(DEFAULT_CONFIG_DIR)
    matter = config.matter("APR-ENT-REG")
    keys = [s.key for s in slots_for(matter)]
    assert keys == ["id_card_front", "id_card_back", "form", "other", "other_2"]
    assert slots_for(matter)[4].aspect_ratio == pytest.approx(0.707)


def test_case_numbers_restart_each_year_in_china_time() -> None:
    assert number_scope("DY", datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == "DY-2026"
    assert number_scope("DY", datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == "DY-2027"
    assert format_number("DY-2026", 123) == "DY-2026-000123"


# ---- access ---------------------------------------------------------------------------

CASE = CaseRecord(
    id="c_1", number="DY-2026-000001", ticket_id="t_1", session_id="s_1", matter="X",
    department="APR", channel="kiosk", hut_id="dy-hall-01", owner="kiosk:kd1", clerk="wangli",
    status=CaseStatus.IN_PROGRESS, applicant_name=None, id_number=None, notes=None,
    outcome=None, rating=None, rating_reason=None, created_at=NOW, updated_at=NOW,
    closed_at=None, rated_at=None, session_ended_at=None,
)


def staff(username: str, role: str = "clerk", department: str = "APR") -> Principal:
    return Principal(role=role, subject=f"clerk:{username}", department=department)  # type: ignore[arg-type]


KIOSK = Principal(role="kiosk", subject="kiosk:kd1")


def decide(principal: Principal, need: Need, case: CaseRecord = CASE,
           owner_ticket: str | None = "t_1", now: datetime = NOW) -> str:
    try:
        return authorize(principal, case, need, owner_ticket=owner_ticket, now=now,
                         window_s=600)
    except XiaowuError as exc:
        return f"{exc.status} {exc.code}"


def test_the_clerk_of_the_case_may_do_all_but_rate() -> None:
    for need in (Need.READ, Need.EDIT, Need.UPLOAD, Need.EXPORT):
        assert decide(staff("wangli"), need) == "clerk"
    assert decide(staff("wangli"), Need.RATE) == "403 forbidden"
    assert decide(staff("zhao"), Need.READ) == "403 not_assigned"


def test_a_supervisor_reads_and_exports_their_departments_cases_only() -> None:
    boss = staff("zhang", "supervisor")
    assert decide(boss, Need.READ) == "supervisor"
    assert decide(boss, Need.EXPORT) == "supervisor"
    assert decide(boss, Need.EDIT) == "403 forbidden"
    assert decide(staff("li", "supervisor", "EDU"), Need.READ) == "403 not_assigned"
    assert decide(staff("root", "admin"), Need.READ) == "403 not_assigned"


def test_the_citizen_side_sees_only_the_case_of_its_live_ticket() -> None:
    assert decide(KIOSK, Need.READ) == "citizen"
    assert decide(KIOSK, Need.UPLOAD) == "citizen"
    assert decide(KIOSK, Need.RATE) == "citizen"
    assert decide(KIOSK, Need.EDIT) == "403 forbidden"
    other = Principal(role="citizen", subject="citizen:someone")
    assert decide(other, Need.READ) == "404 case_not_found"
    # The booth queued again for the next citizen: the previous case is out of reach.
    assert decide(KIOSK, Need.READ, owner_ticket="t_2") == "404 case_not_found"


def test_after_the_session_the_citizen_side_may_read_and_rate_for_a_while() -> None:
    ended = replace(CASE, session_ended_at=NOW - timedelta(seconds=300))
    assert decide(KIOSK, Need.RATE, ended, owner_ticket=None) == "citizen"
    assert decide(KIOSK, Need.UPLOAD, ended, owner_ticket=None) == "404 case_not_found"
    later = NOW + timedelta(seconds=400)
    assert decide(KIOSK, Need.READ, ended, owner_ticket=None, now=later) == "404 case_not_found"
    assert decide(KIOSK, Need.READ, CASE, owner_ticket=None) == "404 case_not_found"
