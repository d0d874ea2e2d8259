"""Sequence-numbered event log per session participant, for resuming after a drop.

python-socketio has no connection-state recovery: an event emitted while a participant
is disconnected is simply lost. Every event the server sends to a participant of a
session is numbered and kept here; a client that reconnects says the last number it saw
and gets the rest, in order. The log is bounded: a participant away long enough to
overflow it has lost its session anyway (grace period) and resyncs from a snapshot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Numbered:
    seq: int
    event: str
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {**self.data, "seq": self.seq}


class ReplayLog:
    def __init__(self, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._events: deque[Numbered] = deque(maxlen=capacity)
        self._next = 1

    @property
    def last_seq(self) -> int:
        return self._next - 1

    def append(self, event: str, data: dict[str, Any]) -> Numbered:
        numbered = Numbered(self._next, event, dict(data))
        self._next += 1
        self._events.append(numbered)
        return numbered

    def since(self, last_seen: int) -> list[Numbered] | None:
        """Events after ``last_seen``, oldest first; None if some were already dropped
        (the client must resync from a snapshot instead)."""
        if last_seen >= self.last_seq:
            return []
        if last_seen < 0:
            last_seen = 0
        oldest = self._events[0].seq if self._events else self._next
        if last_seen + 1 < oldest:
            return None
        return [e for e in self._events if e.seq > last_seen]
