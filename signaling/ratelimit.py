"""Per-socket flood control: a token bucket with a strike count. Pure: time is passed in.

A client over its rate first gets its events refused (``rate_limited``), so a burst from
a legitimate page costs it nothing but a retry; one that keeps sending past the limit is
disconnected, so a flooding client cannot keep the event loop busy for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    ALLOW = "allow"
    THROTTLE = "throttle"
    DISCONNECT = "disconnect"


@dataclass(slots=True)
class TokenBucket:
    rate: float
    """Tokens added per second: the sustained event rate allowed."""
    burst: float
    """Bucket size: how many events may arrive at once."""
    disconnect_after: int = 50
    """Refused events, without the bucket refilling in between, before disconnecting."""
    tokens: float = -1.0
    updated: float = 0.0
    strikes: int = 0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {self.rate}, {self.burst}")
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self, now: float) -> Verdict:
        elapsed = max(0.0, now - self.updated)
        self.updated = now
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            if self.tokens >= 1.0:
                self.strikes = 0
            return Verdict.ALLOW
        self.strikes += 1
        if self.strikes >= self.disconnect_after:
            return Verdict.DISCONNECT
        return Verdict.THROTTLE
