"""Segment planning and track clocks: pure logic, frames described by values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from media.segments import (
    Action,
    Close,
    Open,
    RequestKeyframes,
    Segmenter,
    TrackClock,
    Write,
)

FPS = 30
Frame = tuple[str, int]


def stream(seconds: float, tracks: dict[str, int], gop: int = 10**9,
           start: float = 0.0) -> Iterator[tuple[str, bool, bool, float]]:
    """Interleaved frames of ``tracks`` (name -> frames per second) in time order.
    Video keyframes every ``gop`` frames."""
    events = []
    for name, rate in tracks.items():
        video = name.startswith("v")
        for n in range(int(seconds * rate)):
            events.append((start + n / rate, name, video, video and n % gop == 0))
    for t, name, video, key in sorted(events):
        yield name, video, key, t


def run(segmenter: Segmenter[Frame], frames: Iterator[tuple[str, bool, bool, float]],
        keyframe_on_request: bool = True) -> list[Action[Frame]]:
    """Feed frames; like a real sender, a video track answers a keyframe request with
    a keyframe as its next frame."""
    actions: list[Action[Frame]] = []
    counters: dict[str, int] = {}
    wanted: set[str] = set()
    for name, video, key, t in frames:
        counters[name] = counters.get(name, 0) + 1
        if video and name in wanted:
            key = True
            wanted.discard(name)
        new = segmenter.add(name, video, key, t, (name, counters[name]))
        if keyframe_on_request and any(isinstance(a, RequestKeyframes) for a in new):
            wanted = {"v1", "v2"}
        actions.extend(new)
    actions.extend(segmenter.finish())
    return actions


def files(actions: list[Action[Frame]]) -> dict[int, list[tuple[str, int, float]]]:
    """Each segment's writes; checks opens and closes are well formed on the way."""
    open_: set[int] = set()
    content: dict[int, list[tuple[str, int, float]]] = {}
    tracks: dict[int, set[str]] = {}
    for action in actions:
        if isinstance(action, Open):
            assert action.index not in content
            open_.add(action.index)
            content[action.index] = []
            tracks[action.index] = {str(track) for track, _ in action.tracks}
        elif isinstance(action, Write):
            assert action.index in open_
            assert action.track in tracks[action.index]
            content[action.index].append((str(action.track), action.item[1], action.t))
        elif isinstance(action, Close):
            open_.remove(action.index)
    assert not open_, "every segment is closed at the end"
    return content


def test_every_frame_is_written_once_and_segments_rotate() -> None:
    tracks = {"v1": FPS, "v2": FPS, "a1": 50, "a2": 50}
    actions = run(Segmenter(segment_s=2.0, handover_s=1.0), stream(7.0, tracks))
    content = files(actions)
    assert len(content) == 4
    written = sorted((name, n) for writes in content.values() for name, n, _ in writes)
    expected = sorted((name, n) for name, rate in tracks.items()
                      for n in range(1, int(7.0 * rate) + 1))
    assert written == expected


def test_each_segment_starts_every_video_track_at_a_keyframe() -> None:
    keyframes: set[tuple[str, int]] = set()
    segmenter: Segmenter[Frame] = Segmenter(segment_s=1.0, handover_s=1.0)
    actions: list[Action[Frame]] = []
    wanted = {"v1", "v2"}
    counters: dict[str, int] = {}
    for name, video, _, t in stream(5.0, {"v1": FPS, "v2": FPS, "a1": 50}):
        counters[name] = counters.get(name, 0) + 1
        key = video and name in wanted
        if key:
            wanted.discard(name)
            keyframes.add((name, counters[name]))
        new = segmenter.add(name, video, key, t, (name, counters[name]))
        if any(isinstance(a, RequestKeyframes) for a in new):
            wanted = {"v1", "v2"}
        actions.extend(new)
    actions.extend(segmenter.finish())
    for index, writes in files(actions).items():
        for track in ("v1", "v2"):
            first = next(n for name, n, _ in writes if name == track)
            assert (track, first) in keyframes, (index, track)


def test_the_first_segment_gathers_the_tracks_that_start_a_little_later() -> None:
    frames = list(stream(3.0, {"a1": 50}))
    frames += [(n, v, k, t + 0.2) for n, v, k, t in stream(2.8, {"v1": FPS})]
    frames.sort(key=lambda f: f[3])
    actions = run(Segmenter(segment_s=10.0, handover_s=2.0), iter(frames))
    opens = [a for a in actions if isinstance(a, Open)]
    assert len(opens) == 1
    assert {track for track, _ in opens[0].tracks} == {"a1", "v1"}
    assert opens[0].t0 == 0.0


def test_delta_frames_before_the_first_keyframe_are_not_written() -> None:
    segmenter: Segmenter[Frame] = Segmenter(segment_s=10.0)
    actions = [*segmenter.add("v1", True, False, 0.0, ("v1", 1)),
               *segmenter.add("v1", True, True, 0.04, ("v1", 2)),
               *segmenter.add("v1", True, False, 1.1, ("v1", 3)),
               *segmenter.finish()]
    assert RequestKeyframes() in actions
    assert [w.item[1] for w in actions if isinstance(w, Write)] == [2, 3]


def test_a_track_that_appears_later_starts_a_new_segment_at_its_keyframe() -> None:
    frames = list(stream(4.0, {"v1": FPS, "a1": 50}, gop=15))
    frames += [(n, v, k, t + 2.0) for n, v, k, t in stream(2.0, {"v2": FPS})]
    frames.sort(key=lambda f: f[3])
    content = files(run(Segmenter(segment_s=60.0), iter(frames)))
    assert len(content) == 2
    assert {name for name, _, _ in content[0]} == {"v1", "a1"}
    assert {name for name, _, _ in content[1]} == {"v1", "a1", "v2"}


def test_a_stalled_video_track_does_not_hold_the_handover_past_its_timeout() -> None:
    segmenter: Segmenter[Frame] = Segmenter(segment_s=1.0, handover_s=0.5)
    frames = stream(3.0, {"v1": FPS, "v2": FPS})
    actions = run(segmenter, ((n, v, k or (n == "v2" and t < 0.5), t) for n, v, k, t in frames
                              if n == "v1" or t < 0.5), keyframe_on_request=True)
    content = files(actions)
    assert len(content) >= 2
    assert all("v2" not in {n for n, _, _ in writes} for writes in list(content.values())[1:])


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Segmenter(segment_s=0)


def test_track_clock_follows_rtp_timestamps_across_the_wrap() -> None:
    clock = TrackClock(90_000)
    start = (1 << 32) - 3000
    times = [clock.time((start + n * 3000) % (1 << 32), 100.0 + n / 30 + 0.004 * (n % 3))
             for n in range(5)]
    assert times == pytest.approx([100.0 + n / 30 for n in range(5)])


def test_track_clock_reanchors_when_the_sender_restarts_with_a_new_origin() -> None:
    clock = TrackClock(48_000)
    assert clock.time(5_000, 10.0) == 10.0
    assert clock.time(5_960, 10.02) == pytest.approx(10.02)
    assert clock.time(123_456_789, 15.0) == 15.0  # reconnect: new random timestamp origin
    assert clock.time(123_457_749, 15.02) == pytest.approx(15.02)
