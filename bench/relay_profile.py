"""Reading py-spy's raw (collapsed stack) output: where the server's samples went."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

IDLE = ("select (selectors.py)", "wait (threading.py)", "get (queue.py)")


def top_frames(raw: Path | list[Path], count: int = 10) -> list[str]:
    """The ``count`` functions with the most busy samples on top of the stack ("own"),
    with their share of busy samples and of busy samples they appear in ("total").
    Samples waiting in the event loop's ``select`` or in idle threads are not busy.
    Several files (processes) are counted together."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    lines = [line for path in (raw if isinstance(raw, list) else [raw])
             for line in path.read_text().splitlines()]
    for line in lines:
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = stack.split(";")
        if _short(frames[-1]).endswith(IDLE):
            continue
        weight = int(number)
        samples += weight
        own[_short(frames[-1])] += weight
        for frame in {_short(f) for f in frames}:
            total[frame] += weight
    if not samples:
        return []
    return [
        f"{100 * n / samples:5.1f} % own {100 * total[name] / samples:5.1f} % total  {name}"
        for name, n in own.most_common(count)
    ]


def _short(frame: str) -> str:
    """``recv (aiortc/rtcrtpreceiver.py:123)`` -> ``recv (aiortc/rtcrtpreceiver.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name
