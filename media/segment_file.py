"""One segment file: encoded frames remuxed into WebM/Matroska, never re-encoded.

VP8 (+ Opus) goes into WebM, anything with H.264 into Matroska. Video streams are
declared with PyAV's ``add_mux_stream`` (no codec context, nothing is opened); the
picture size the header needs comes from the first keyframe's own header. Opus gets a
libopus context only so that the header carries an ``OpusHead`` (opening it costs
well under a millisecond; it never encodes). H.264 access units stay in Annex B; the
Matroska muxer builds the ``avcC`` record from the first keyframe's SPS/PPS.

A segment is written as ``NAME.part``; :meth:`SegmentFile.close` writes the trailer,
fsyncs, hashes and only then renames it to ``NAME``, so a file without ``.part`` is
always complete. Blocking work: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import fractions
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from media.picture_size import picture_size

DEFAULT_DURATION = {"audio": 960, "video": 3000}
HASH_CHUNK = 1 << 20
_MUX_NAMES = {"VP8": "vp8", "H264": "h264"}


@dataclass(frozen=True, slots=True)
class TrackSpec:
    name: str
    kind: str
    codec: str
    clock_rate: int


@dataclass(frozen=True, slots=True)
class ClosedFile:
    path: Path
    sha256: str
    duration_s: float
    size_bytes: int
    tracks: tuple[str, ...]


class _Track:
    """One stream of the file; holds back one frame to give it its exact duration."""

    def __init__(self, spec: TrackSpec, stream: Any) -> None:
        self.spec = spec
        self.stream = stream
        self.time_base = fractions.Fraction(1, spec.clock_rate)
        self.held: tuple[int, bool, bytes] | None = None
        self.last_duration = DEFAULT_DURATION.get(spec.kind, 0)
        self.end = 0


def container_format(specs: Sequence[TrackSpec]) -> tuple[str, str]:
    """``(ffmpeg format, file suffix)`` for a set of tracks."""
    if all(spec.codec in ("VP8", "opus") for spec in specs):
        return "webm", ".webm"
    return "matroska", ".mkv"


class SegmentFile:
    def __init__(self, stem: Path, tracks: Sequence[tuple[TrackSpec, bytes]],
                 title: str = "") -> None:
        """``stem``: the path without suffix; ``tracks``: each track with its first
        frame (a keyframe for video)."""
        fmt, suffix = container_format([spec for spec, _ in tracks])
        self.path = stem.with_name(stem.name + suffix)
        self.part = self.path.with_name(self.path.name + ".part")
        self._container: Any = av.open(str(self.part), "w", format=fmt)
        if title:
            self._container.metadata["title"] = title
        self._tracks: dict[str, _Track] = {}
        try:
            for spec, first in tracks:
                self._tracks[spec.name] = _Track(spec, self._add_stream(spec, first))
        except BaseException:
            self.abandon()
            raise

    def write(self, track: str, ticks: int, keyframe: bool, data: bytes) -> None:
        """Add a frame at ``ticks`` (track clock units since the segment's time zero)."""
        state = self._tracks[track]
        if state.held is not None:
            held_ticks = state.held[0]
            ticks = max(ticks, held_ticks + 1)
            state.last_duration = ticks - held_ticks
            self._mux(state, state.last_duration)
        state.held = (max(ticks, 0), keyframe, data)

    def close(self) -> ClosedFile:
        """Finish the file (trailer, fsync, SHA-256) and give it its final name."""
        for state in self._tracks.values():
            if state.held is not None:
                self._mux(state, state.last_duration)
        self._container.close()
        digest = hashlib.sha256()
        with open(self.part, "rb") as handle:
            os.fsync(handle.fileno())
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
        size = self.part.stat().st_size
        os.replace(self.part, self.path)
        _fsync_directory(self.path.parent)
        duration = max(
            (float(state.end * state.time_base) for state in self._tracks.values()),
            default=0.0,
        )
        return ClosedFile(self.path, digest.hexdigest(), duration, size,
                          tuple(self._tracks))

    def abandon(self) -> None:
        """Drop the file unfinished (it stays as ``.part``)."""
        with contextlib.suppress(Exception):  # already failing; the .part file stays
            self._container.close()

    def _add_stream(self, spec: TrackSpec, first: bytes) -> Any:
        if spec.kind == "video":
            size = picture_size(spec.codec, first)
            if size is None:
                raise ValueError(f"{spec.name}: first frame has no {spec.codec} picture size")
            stream = self._container.add_mux_stream(
                _MUX_NAMES[spec.codec], width=size[0], height=size[1]
            )
        elif spec.codec == "opus":
            stream = self._container.add_stream("libopus", rate=spec.clock_rate)
        else:
            raise ValueError(f"{spec.name}: cannot record {spec.kind} codec {spec.codec}")
        stream.time_base = fractions.Fraction(1, spec.clock_rate)
        stream.metadata["title"] = spec.name
        return stream

    def _mux(self, state: _Track, duration: int) -> None:
        assert state.held is not None
        ticks, keyframe, data = state.held
        state.held = None
        packet = av.Packet(data)
        packet.stream = state.stream
        packet.time_base = state.time_base
        packet.pts = packet.dts = ticks
        packet.duration = duration
        packet.is_keyframe = keyframe
        self._container.mux(packet)
        state.end = max(state.end, ticks + duration)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
