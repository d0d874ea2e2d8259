"""Opening hours of a hut, written as "Mon-Fri 08:30-12:00" and parsed into typed ranges.

All huts are in Shandong, so times are China Standard Time: a fixed UTC+8 with no
daylight saving. A fixed offset is exact here and needs no tz database on the server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator

CHINA_TZ = timezone(timedelta(hours=8), "UTC+08:00")

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_EXAMPLE = "'Mon-Fri 08:30-12:00' or 'Sat,Sun 09:00-12:00'"
_RANGE_RE = re.compile(r"\s*(?P<days>\S+)\s+(?P<start>[^\s-]+)\s*-\s*(?P<end>[^\s-]+)\s*")
_TIME_RE = re.compile(r"(?P<hour>\d{2}):(?P<minute>\d{2})")


def to_china_time(at: datetime) -> datetime:
    """Convert an aware datetime to China time; a naive one is refused, its zone is unknown."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"naive datetime {at.isoformat()} has no time zone; pass an aware one, "
            "e.g. datetime.now(CHINA_TZ)"
        )
    return at.astimezone(CHINA_TZ)


@dataclass(frozen=True)
class OpeningRange:
    """One weekly opening window: the same hours on each of `days`.

    `days` holds `datetime.weekday()` numbers (0 = Monday). `end` is exclusive, so
    "08:30-12:00" is open at 11:59 and closed at 12:00.
    """

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError(f"days must be a non-empty set of weekdays 0-6, not {set(self.days)}")
        if self.end <= self.start:
            raise ValueError(
                f"closing time {self.end:%H:%M} is not after opening time {self.start:%H:%M}"
            )

    def contains(self, at: datetime) -> bool:
        local = to_china_time(at)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def __str__(self) -> str:
        return f"{_format_days(self.days)} {self.start:%H:%M}-{self.end:%H:%M}"


def parse_opening_range(text: str) -> OpeningRange:
    """Parse "<days> HH:MM-HH:MM"; days are "Mon", "Mon-Fri" or a comma list "Mon-Wed,Fri"."""
    match = _RANGE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an opening range; expected {_EXAMPLE}")
    days = _parse_days(match["days"])
    start = _parse_time(match["start"])
    end = _parse_time(match["end"])
    try:
        return OpeningRange(days=days, start=start, end=end)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def _parse_days(spec: str) -> frozenset[int]:
    days: set[int] = set()
    for item in spec.split(","):
        first, dash, last = item.partition("-")
        start = _day_number(first)
        stop = _day_number(last) if dash else start
        if stop < start:
            raise ValueError(f"day range {item!r} runs backwards; days run from Mon to Sun")
        days.update(range(start, stop + 1))
    return frozenset(days)


def _day_number(name: str) -> int:
    try:
        return DAY_NAMES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown day {name!r}; use {', '.join(DAY_NAMES[:-1])} or {DAY_NAMES[-1]}"
        ) from None


def _parse_time(text: str) -> time:
    match = _TIME_RE.fullmatch(text)
    hour = int(match["hour"]) if match else -1
    minute = int(match["minute"]) if match else -1
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"{text!r} is not a time of day; write HH:MM, from 00:00 to 23:59")
    return time(hour, minute)


def _format_days(days: frozenset[int]) -> str:
    parts: list[str] = []
    ordered = sorted(days)
    run_start = previous = ordered[0]
    for day in [*ordered[1:], None]:
        if day is not None and day == previous + 1:
            previous = day
            continue
        first, last = DAY_NAMES[run_start], DAY_NAMES[previous]
        parts.append(first if run_start == previous else f"{first}-{last}")
        if day is not None:
            run_start = previous = day
    return ",".join(parts)


def _validate_range(value: object) -> OpeningRange:
    if isinstance(value, OpeningRange):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string such as {_EXAMPLE}, not {type(value).__name__}")
    return parse_opening_range(value)


OpeningRangeField = Annotated[
    OpeningRange,
    PlainValidator(_validate_range),
    PlainSerializer(str, return_type=str),
]
"""Pydantic field type: validated from a string, serialised back to its canonical string."""
