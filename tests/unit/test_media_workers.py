"""Placement of sessions on media workers, and errors crossing the worker boundary."""

from __future__ import annotations

import pickle

from media.errors import MediaBusy, MediaError
from media.worker_wire import WireError, WorkerStatus
from media.workers import choose_worker


def load(sessions: int, cpu: float = 0.0, lag: float = 0.0) -> WorkerStatus:
    return WorkerStatus(0, sessions, cpu, lag)


def test_fewest_sessions_first_then_lowest_cpu_then_lowest_index() -> None:
    assert choose_worker([load(3), load(1), load(2)], None, 100) == 1
    assert choose_worker([load(1, 40.0), load(1, 20.0)], None, 100) == 1
    assert choose_worker([load(1, 20.0), load(1, 20.0)], None, 100) == 0


def test_full_lagging_and_missing_workers_are_skipped() -> None:
    assert choose_worker([load(2), load(0, lag=150.0), None, load(1)], 2, 100) == 3
    assert choose_worker([load(2), load(0, lag=150.0), None], 2, 100) is None
    assert choose_worker([], None, 100) is None


def test_equal_sessions_alternate_between_workers() -> None:
    counts = [0, 0]
    order = []
    for _ in range(6):
        index = choose_worker([load(n) for n in counts], None, 100)
        assert index is not None
        counts[index] += 1
        order.append(index)
    assert order == [0, 1, 0, 1, 0, 1]


def test_an_error_keeps_code_status_messages_and_detail_across_a_pickle() -> None:
    wire = pickle.loads(pickle.dumps(WireError.of(MediaBusy(20))))  # noqa: S301
    error = wire.error()
    assert isinstance(error, MediaError)
    assert (error.code, error.status, error.detail) == ("media_busy", 503, {"limit": 20})
    assert error.message == MediaBusy(20).message


def test_an_unexpected_exception_becomes_internal_error() -> None:
    error = WireError.of(KeyError("x")).error()
    assert (error.code, error.status) == ("internal_error", 500)
    assert "KeyError" in error.message_en
