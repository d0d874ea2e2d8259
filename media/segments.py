"""Where each recorded frame goes: which segment file, and when segments open and close.

A recording is a series of files (segments). Every file must decode on its own, so each
video track in a segment starts at a keyframe, and a file's track list is fixed when
it opens (the container header). Rotation therefore is a *handover*:

1. The current segment is due (``segment_s`` of media) or a track appears that it does
   not hold (a participant joined, a camera was added): keyframes are requested.
2. Each video track keeps writing into the old segment until its keyframe arrives; from
   that keyframe on its frames are held for the new segment. Audio follows as soon as
   the first video track has moved (or at once if there is no live video).
3. When every live track has moved, or ``handover_s`` has passed, the new segment
   opens with the tracks that moved, receives what was held, and the old one closes.

Nothing is lost at a boundary and no segment starts with an undecodable frame. A track
that had not moved in time (its sender stalled) triggers a new handover at its next
keyframe. :class:`TrackClock` puts each track's RTP timestamps on the common timeline.

Pure logic: frames described by (track, is video, is keyframe, time) in, actions out.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

TS_MOD = 1 << 32

Item = TypeVar("Item")
Track = Hashable


class TrackClock:
    """Seconds on the recorder's clock for one track's RTP timestamps.

    Timing inside a track comes from its RTP timestamps (smooth, as the sender stamped
    them; wrap-around unrolled); the track is anchored to the arrival time of its first
    frame, which lines the tracks up with each other. When the timestamps stop matching
    the arrival times by more than ``resync_s`` (the sender restarted or was replaced
    after a reconnect, with a new random origin) the track is anchored again.
    """

    def __init__(self, clock_rate: int, resync_s: float = 1.0) -> None:
        self.clock_rate = clock_rate
        self._resync_s = resync_s
        self._last_ts: int | None = None
        self._extended = 0
        self._anchor_ext = 0
        self._anchor_time = 0.0

    def time(self, timestamp: int, arrival: float) -> float:
        if self._last_ts is None:
            self._extended = timestamp
            self._anchor(arrival)
        else:
            delta = (timestamp - self._last_ts + TS_MOD // 2) % TS_MOD - TS_MOD // 2
            self._extended += delta
        self._last_ts = timestamp
        t = self._anchor_time + (self._extended - self._anchor_ext) / self.clock_rate
        if abs(t - arrival) > self._resync_s:
            self._anchor(arrival)
            t = arrival
        return t

    def _anchor(self, arrival: float) -> None:
        self._anchor_ext = self._extended
        self._anchor_time = arrival


@dataclass(frozen=True, slots=True)
class Open(Generic[Item]):
    """Open segment ``index`` whose time zero is ``t0``, holding ``tracks``; each track
    comes with its first frame (a keyframe for video) so the header can be written."""

    index: int
    t0: float
    tracks: tuple[tuple[Track, Item], ...]


@dataclass(frozen=True, slots=True)
class Write(Generic[Item]):
    index: int
    track: Track
    t: float
    item: Item


@dataclass(frozen=True, slots=True)
class Close:
    index: int


@dataclass(frozen=True, slots=True)
class RequestKeyframes:
    """Ask every video sender for a keyframe (the caller rate-limits)."""


Action = Open[Item] | Write[Item] | Close | RequestKeyframes


@dataclass(slots=True)
class _Segment:
    index: int
    t0: float
    tracks: frozenset[Track]


@dataclass(slots=True)
class _Handover(Generic[Item]):
    started: float | None
    settle_until: float | None
    moved: set[Track] = field(default_factory=set)
    held: list[tuple[Track, float, Item]] = field(default_factory=list)
    video_moved: bool = False


class Segmenter(Generic[Item]):
    """Plans segments; see the module docstring.

    ``live_s``: a video track is waited for at a handover if it delivered a frame this
    recently. At the very start nothing is known yet, so the first segment gathers for
    ``live_s`` (or until ``handover_s``) before it opens.
    """

    def __init__(self, segment_s: float = 10.0, handover_s: float = 2.0,
                 live_s: float = 1.0) -> None:
        if segment_s <= 0 or handover_s <= 0 or live_s <= 0:
            raise ValueError("segment_s, handover_s and live_s must be positive")
        self.segment_s = segment_s
        self.handover_s = handover_s
        self.live_s = live_s
        self._current: _Segment | None = None
        self._handover: _Handover[Item] | None = _Handover(None, None)
        self._video: dict[Track, bool] = {}
        self._seen: dict[Track, float] = {}
        self._next_index = 0

    @property
    def current_index(self) -> int | None:
        return None if self._current is None else self._current.index

    def add(self, track: Track, video: bool, keyframe: bool, t: float,
            item: Item) -> list[Action[Item]]:
        actions: list[Action[Item]] = []
        self._video[track] = video
        self._seen[track] = t
        current = self._current
        if self._handover is None and current is not None and (
            track not in current.tracks or t - current.t0 >= self.segment_s
        ):
            if video and not keyframe and track not in current.tracks:
                return [RequestKeyframes()]
            self._handover = _Handover(t, None)
            actions.append(RequestKeyframes())
        handover = self._handover
        if handover is None:
            assert current is not None
            actions.append(Write(current.index, track, t, item))
            return actions
        if handover.started is None:
            handover.started = t
            handover.settle_until = t + self.live_s
            actions.append(RequestKeyframes())
        if track in handover.moved:
            handover.held.append((track, t, item))
        elif self._moves_now(track, video, keyframe, handover):
            handover.moved.add(track)
            handover.video_moved = handover.video_moved or video
            handover.held.append((track, t, item))
        elif current is not None and track in current.tracks:
            actions.append(Write(current.index, track, t, item))
        if self._handover_done(handover, t):
            actions.extend(self._open_next(handover))
        return actions

    def rotate(self, t: float) -> list[Action[Item]]:
        """Start a handover now (e.g. the writer fell behind and dropped frames)."""
        if self._handover is not None or self._current is None:
            return []
        self._handover = _Handover(t, None)
        return [RequestKeyframes()]

    def finish(self) -> list[Action[Item]]:
        """Stop: open what was held (if anything) and close every segment."""
        actions: list[Action[Item]] = []
        handover = self._handover
        if handover is not None and handover.moved:
            actions.extend(self._open_next(handover))
        if self._current is not None:
            actions.append(Close(self._current.index))
        self._current = None
        self._handover = None
        return actions

    def _moves_now(self, track: Track, video: bool, keyframe: bool,
                   handover: _Handover[Item]) -> bool:
        if video:
            return keyframe
        current = self._current
        return (
            current is None
            or handover.video_moved
            or track not in current.tracks
            or not self._live_video(current.tracks)
        )

    def _live_video(self, tracks: frozenset[Track] | set[Track]) -> set[Track]:
        return {track for track in self._live(tracks) if self._video[track]}

    def _live(self, tracks: frozenset[Track] | set[Track]) -> set[Track]:
        latest = max(self._seen.values())
        return {track for track in tracks if latest - self._seen[track] <= self.live_s}

    def _handover_done(self, handover: _Handover[Item], t: float) -> bool:
        if not handover.moved or handover.started is None:
            return False
        if t - handover.started >= self.handover_s:
            return True
        if handover.settle_until is not None and t < handover.settle_until:
            return False
        waiting = self._live(set(self._video)) - handover.moved
        return not waiting

    def _open_next(self, handover: _Handover[Item]) -> list[Action[Item]]:
        firsts: dict[Track, Item] = {}
        for track, _, item in handover.held:
            firsts.setdefault(track, item)
        t0 = min(t for _, t, _ in handover.held)
        index = self._next_index
        self._next_index += 1
        actions: list[Action[Item]] = [Open(index, t0, tuple(firsts.items()))]
        actions.extend(Write(index, track, t, item) for track, t, item in handover.held)
        if self._current is not None:
            actions.append(Close(self._current.index))
        self._current = _Segment(index, t0, frozenset(firsts))
        self._handover = None
        return actions
