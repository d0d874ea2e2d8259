from __future__ import annotations

import pytest

from server.errors import InvalidTransition
from signaling.sessions import Outcome, Session, SessionEvent, SessionState

S = SessionState


def new_session(state: SessionState = S.OFFERED) -> Session:
    return Session("s1", ticket_id="t1", clerk_id="c1", ticket_created_at=100.0,
                   offered_at=160.0, state=state)


def test_a_completed_session() -> None:
    session = new_session()
    session.transition(S.ACCEPTED, reason="accept", now=170.0)
    session.transition(S.CONNECTING, reason="peers", now=171.0)
    session.transition(S.ACTIVE, reason="media", now=175.0)
    assert session.handle_seconds is None
    event = session.transition(S.ENDED, reason="case_done", now=475.0, outcome=Outcome.COMPLETED)
    assert event == SessionEvent("s1", S.ACTIVE, S.ENDED, "case_done", 475.0, Outcome.COMPLETED)
    assert str(event) == "session s1: active -> ended (case_done, completed)"
    assert (session.outcome, session.end_reason) == (Outcome.COMPLETED, "case_done")
    assert session.wait_seconds == 70.0
    assert session.handle_seconds == 300.0
    assert session.entered == {S.OFFERED: 160.0, S.ACCEPTED: 170.0, S.CONNECTING: 171.0,
                               S.ACTIVE: 175.0, S.ENDED: 475.0}


def test_event_without_outcome_prints_plainly() -> None:
    event = new_session().transition(S.ACCEPTED, reason="accept", now=170.0)
    assert str(event) == "session s1: offered -> accepted (accept)"
    assert event.outcome is None


@pytest.mark.parametrize("state", [S.OFFERED, S.ACCEPTED, S.CONNECTING, S.ACTIVE])
@pytest.mark.parametrize("outcome", [Outcome.ABANDONED, Outcome.FAILED])
def test_any_open_session_can_end_unsuccessfully(state: SessionState, outcome: Outcome) -> None:
    session = new_session(state)
    event = session.transition(S.ENDED, reason="gone", now=200.0, outcome=outcome)
    assert (event.old, session.state, session.outcome) == (state, S.ENDED, outcome)


@pytest.mark.parametrize("state", [S.OFFERED, S.ACCEPTED, S.CONNECTING])
def test_only_an_active_session_completes(state: SessionState) -> None:
    session = new_session(state)
    with pytest.raises(InvalidTransition) as info:
        session.transition(S.ENDED, reason="done", now=200.0, outcome=Outcome.COMPLETED)
    assert info.value.message_en == (
        f"session s1 cannot go from {state} to ended: only an active session can complete")
    assert session.state is state and session.outcome is None


@pytest.mark.parametrize(("old", "new"), [
    (S.OFFERED, S.CONNECTING), (S.OFFERED, S.ACTIVE), (S.ACCEPTED, S.ACTIVE),
    (S.ACCEPTED, S.OFFERED), (S.ACTIVE, S.CONNECTING), (S.CONNECTING, S.ACCEPTED),
    (S.ACTIVE, S.ACTIVE),
])
def test_no_skipping_or_going_back(old: SessionState, new: SessionState) -> None:
    with pytest.raises(InvalidTransition) as info:
        new_session(old).transition(new, reason="x", now=1.0)
    assert info.value.detail == {"current": str(old), "requested": str(new)}


def test_ended_is_final() -> None:
    session = new_session(S.ENDED)
    with pytest.raises(InvalidTransition) as info:
        session.transition(S.ACTIVE, reason="x", now=1.0)
    assert info.value.message_zh == "会话 s1 状态不能从 ended 变为 active：不允许的状态变更"
    with pytest.raises(InvalidTransition):
        session.transition(S.ENDED, reason="x", now=1.0, outcome=Outcome.FAILED)


def test_outcome_exactly_when_ending() -> None:
    with pytest.raises(ValueError, match="outcome must be given exactly when ending"):
        new_session().transition(S.ENDED, reason="x", now=1.0)
    with pytest.raises(ValueError, match="outcome must be given exactly when ending"):
        new_session().transition(S.ACCEPTED, reason="x", now=1.0, outcome=Outcome.FAILED)


def test_declined_offer_has_no_wait_or_handle_time() -> None:
    session = new_session()
    session.transition(S.ENDED, reason="declined", now=170.0, outcome=Outcome.ABANDONED)
    assert session.wait_seconds is None
    assert session.handle_seconds is None


def test_lost_before_media_has_wait_but_no_handle_time() -> None:
    session = new_session()
    session.transition(S.ACCEPTED, reason="accept", now=190.0)
    session.transition(S.ENDED, reason="clerk_lost", now=195.0, outcome=Outcome.FAILED)
    assert session.wait_seconds == 90.0
    assert session.handle_seconds is None


def test_restored_from_stored_fields() -> None:
    session = Session("s1", ticket_id="t1", clerk_id="c1", ticket_created_at=0.0,
                      offered_at=5.0, state=S.ACTIVE,
                      entered={S.ACCEPTED: 6.0, S.CONNECTING: 7.0, S.ACTIVE: 9.0})
    session.transition(S.ENDED, reason="done", now=69.0, outcome=Outcome.COMPLETED)
    assert (session.wait_seconds, session.handle_seconds) == (6.0, 60.0)
