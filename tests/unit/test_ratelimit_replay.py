from __future__ import annotations

import pytest

from signaling.ratelimit import TokenBucket, Verdict
from signaling.replay import ReplayLog


def test_bucket_allows_a_burst_then_throttles_then_refills() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    assert [bucket.take(0.0) for _ in range(5)] == [Verdict.ALLOW] * 5
    assert bucket.take(0.0) is Verdict.THROTTLE
    assert bucket.take(0.1) is Verdict.ALLOW  # one token back after 0.1 s at 10/s
    assert bucket.take(0.1) is Verdict.THROTTLE


def test_a_client_that_keeps_flooding_is_disconnected() -> None:
    bucket = TokenBucket(rate=10, burst=5, disconnect_after=20)
    verdicts = [bucket.take(0.0) for _ in range(100)]
    assert verdicts.count(Verdict.ALLOW) == 5
    assert Verdict.DISCONNECT in verdicts
    assert verdicts.index(Verdict.DISCONNECT) == 5 + 19


def test_strikes_reset_once_the_client_slows_down() -> None:
    bucket = TokenBucket(rate=10, burst=5, disconnect_after=3)
    for _ in range(7):
        bucket.take(0.0)
    assert bucket.strikes == 2
    assert bucket.take(10.0) is Verdict.ALLOW
    assert bucket.strikes == 0


def test_bad_bucket_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, burst=5)


def test_replay_returns_missed_events_in_order() -> None:
    log = ReplayLog(capacity=10)
    for i in range(5):
        log.append("session.state", {"i": i})
    missed = log.since(2)
    assert missed is not None
    assert [(e.seq, e.data["i"]) for e in missed] == [(3, 2), (4, 3), (5, 4)]
    assert missed[0].payload() == {"i": 2, "seq": 3}
    assert log.since(5) == []
    assert log.since(99) == []


def test_replay_reports_a_gap_when_the_log_overflowed() -> None:
    log = ReplayLog(capacity=3)
    for i in range(6):
        log.append("x", {"i": i})
    assert log.since(2) is None
    tail = log.since(3)
    assert tail is not None and [e.seq for e in tail] == [4, 5, 6]
