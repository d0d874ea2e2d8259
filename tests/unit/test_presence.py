from __future__ import annotations

import dataclasses

import pytest

from server.errors import InvalidTransition
from signaling.presence import ClerkPresence, MissReason, PresenceEvent, PresenceState

S = PresenceState

# Written out again rather than imported, so a change to the module's table fails here.
EXPECTED = {
    S.OFFLINE: {S.AVAILABLE},
    S.AVAILABLE: {S.OFFERED, S.AWAY, S.BREAK, S.OFFLINE},
    S.OFFERED: {S.AVAILABLE, S.BUSY, S.AWAY, S.OFFLINE},
    S.BUSY: {S.WRAP_UP, S.OFFLINE},
    S.WRAP_UP: {S.AVAILABLE, S.BREAK, S.OFFLINE},
    S.AWAY: {S.AVAILABLE, S.OFFLINE},
    S.BREAK: {S.AVAILABLE, S.OFFLINE},
}


def clerk_in(state: PresenceState, misses: int = 0) -> ClerkPresence:
    return ClerkPresence("c1", state=state, consecutive_misses=misses, idle_since=1.0)


def reason_for(old: PresenceState, new: PresenceState) -> str:
    return MissReason.TIMEOUT if (old, new) == (S.OFFERED, S.AWAY) else "test"


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_transition_table(old: PresenceState, new: PresenceState) -> None:
    # offered -> away is the second miss, so start that case with one miss counted.
    presence = clerk_in(old, misses=1)
    if new in EXPECTED[old]:
        event = presence.transition(new, reason=reason_for(old, new), now=5.0)
        assert (event.old, event.new, presence.state) == (old, new, new)
    else:
        with pytest.raises(InvalidTransition):
            presence.transition(new, reason="test", now=5.0)
        assert presence.state is old


def test_invalid_transition_names_both_states() -> None:
    presence = clerk_in(S.BUSY)
    with pytest.raises(InvalidTransition) as info:
        presence.transition(S.OFFERED, reason="offer t1", now=5.0)
    error = info.value
    assert error.code == "invalid_transition"
    assert error.message_en == "clerk c1 cannot go from busy to offered: not an allowed transition"
    assert error.message_zh == "工作人员 c1 状态不能从 busy 变为 offered：不允许的状态变更"
    assert error.detail == {"current": "busy", "requested": "offered"}


def test_event_records_the_change() -> None:
    presence = ClerkPresence("c7")
    event = presence.transition(S.AVAILABLE, reason="login", now=12.5)
    assert event == PresenceEvent("c7", S.OFFLINE, S.AVAILABLE, "login", 12.5)
    assert str(event) == "clerk c7: offline -> available (login)"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.new = S.BUSY  # type: ignore[misc]


def test_a_full_shift() -> None:
    presence = ClerkPresence("c1")
    steps = [(S.AVAILABLE, "login"), (S.OFFERED, "offer"), (S.BUSY, "accept"),
             (S.WRAP_UP, "session_ended"), (S.AVAILABLE, "ready"), (S.BREAK, "break"),
             (S.AVAILABLE, "back"), (S.OFFLINE, "logout")]
    log = [str(presence.transition(new, reason=why, now=float(i)))
           for i, (new, why) in enumerate(steps)]
    assert log[2] == "clerk c1: offered -> busy (accept)"
    assert presence.sessions_today == 1
    assert presence.idle_since == 6.0


def test_idle_since_is_stamped_on_every_entry_into_available() -> None:
    presence = ClerkPresence("c1")
    presence.transition(S.AVAILABLE, reason="login", now=10.0)
    assert presence.idle_since == 10.0
    presence.transition(S.OFFERED, reason="offer", now=20.0)
    assert presence.idle_since == 10.0
    presence.miss(MissReason.DECLINED, now=25.0)
    assert presence.idle_since == 25.0


def test_decline_then_timeout_goes_away() -> None:
    presence = clerk_in(S.AVAILABLE)
    presence.transition(S.OFFERED, reason="offer", now=1.0)
    first = presence.miss(MissReason.DECLINED, now=2.0)
    assert (first.new, presence.consecutive_misses) == (S.AVAILABLE, 1)
    presence.transition(S.OFFERED, reason="offer", now=3.0)
    second = presence.miss(MissReason.TIMEOUT, now=4.0)
    assert (second.old, second.new, second.reason) == (S.OFFERED, S.AWAY, "timeout")
    assert presence.consecutive_misses == 2


def test_accept_resets_misses() -> None:
    presence = clerk_in(S.OFFERED, misses=1)
    presence.transition(S.BUSY, reason="accept", now=1.0)
    assert presence.consecutive_misses == 0
    for new in (S.WRAP_UP, S.AVAILABLE, S.OFFERED):
        presence.transition(new, reason="x", now=2.0)
    assert presence.miss(MissReason.DECLINED, now=3.0).new is S.AVAILABLE


def test_withdrawn_offer_is_not_a_miss() -> None:
    presence = clerk_in(S.OFFERED, misses=1)
    event = presence.transition(S.AVAILABLE, reason="citizen_left", now=1.0)
    assert event.new is S.AVAILABLE
    assert presence.consecutive_misses == 1


def test_second_miss_may_not_return_to_available() -> None:
    presence = clerk_in(S.OFFERED, misses=1)
    with pytest.raises(InvalidTransition) as info:
        presence.transition(S.AVAILABLE, reason=MissReason.DECLINED, now=1.0)
    assert info.value.message_en == (
        "clerk c1 cannot go from offered to available: miss 2 in a row must go to away")
    assert presence.consecutive_misses == 1


def test_first_miss_may_not_go_away() -> None:
    presence = clerk_in(S.OFFERED)
    with pytest.raises(InvalidTransition, match="only miss 2 in a row goes away"):
        presence.transition(S.AWAY, reason=MissReason.TIMEOUT, now=1.0)
    with pytest.raises(InvalidTransition):
        clerk_in(S.OFFERED, misses=1).transition(S.AWAY, reason="citizen_left", now=1.0)


@pytest.mark.parametrize("paused", [S.AWAY, S.OFFLINE])
def test_coming_back_resets_misses(paused: PresenceState) -> None:
    presence = clerk_in(S.OFFERED, misses=1)
    presence.miss(MissReason.TIMEOUT, now=1.0)
    if paused is S.OFFLINE:
        presence.transition(S.OFFLINE, reason="logout", now=2.0)
    presence.transition(S.AVAILABLE, reason="back", now=3.0)
    assert presence.consecutive_misses == 0


def test_miss_limit_is_configurable() -> None:
    presence = ClerkPresence("c1", state=S.OFFERED, miss_limit=1)
    assert presence.miss(MissReason.DECLINED, now=1.0).new is S.AWAY
    with pytest.raises(ValueError, match="miss_limit must be at least 1, got 0"):
        ClerkPresence("c1", miss_limit=0)


def test_miss_outside_an_offer_is_refused() -> None:
    with pytest.raises(InvalidTransition):
        clerk_in(S.BUSY).miss(MissReason.TIMEOUT, now=1.0)


def test_reset_day() -> None:
    presence = ClerkPresence("c1", sessions_today=9)
    presence.reset_day()
    assert presence.sessions_today == 0
