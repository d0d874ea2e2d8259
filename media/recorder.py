"""Recording a session by remuxing the encoded frames it forwards.

A :class:`SessionRecorder` listens to every :class:`~media.forwarding.Source` of a
:class:`~media.relay.RelaySession` (each participant's audio and every camera, including
sources that appear later) and writes what they carry into segment files: WebM for
VP8 + Opus, Matroska for H.264 + Opus. Nothing is decoded or re-encoded.

Recording needs the citizen's consent: :meth:`SessionRecorder.start` takes the consent
record's id as a required keyword argument, refuses an empty one, and every segment
carries it. Nothing is written (no directory, no file) before ``start``.

The event loop only stamps each frame and plans its segment (:mod:`media.segments`);
muxing, fsync and hashing run in one writer thread per recording, fed through a queue.
Each closed segment is complete on disk (renamed from ``.part`` after its trailer and
fsync) and reported with path, SHA-256, duration and size, so a crash loses at most the
segment being written. If the disk falls behind by ``max_backlog_frames`` the recorder
drops frames and starts a new segment rather than grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media.aiortc_internals import EncodedFrame
from media.bitstream import annexb_nal_units
from media.errors import MediaError
from media.forwarding import Source, SourceKey
from media.relay import RelaySession
from media.segment_file import ClosedFile, SegmentFile, TrackSpec
from media.segments import (
    Action,
    Close,
    Open,
    RequestKeyframes,
    Segmenter,
    TrackClock,
    Write,
)

logger = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
H264_SPS, H264_PPS, H264_IDR = 7, 8, 5


class ConsentRequired(MediaError):
    code = "recording_consent_required"
    status = 409

    def __init__(self) -> None:
        super().__init__("录像前须先记录群众的同意", "recording needs a consent record id")


class RecordingStateError(MediaError):
    code = "recording_state_invalid"
    status = 409

    def __init__(self, state: str, wanted: str) -> None:
        super().__init__(
            f"录像状态为 {state}，无法{wanted}", f"recording is {state}; cannot {wanted}",
            detail={"state": state},
        )


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    directory: Path
    segment_s: float = 10.0
    handover_s: float = 2.0
    max_backlog_frames: int = 3000


@dataclass(frozen=True, slots=True)
class Segment:
    """A finished, fsynced segment file as the case file records it.

    ``started_at`` is the wall-clock time (Unix seconds) of the file's time zero;
    ``codecs`` are the session's negotiated codecs, video first (``("VP8", "opus")``).
    """

    session_id: str
    consent_id: str
    index: int
    path: Path
    sha256: str
    duration_s: float
    size_bytes: int
    started_at: float
    tracks: tuple[str, ...]
    codecs: tuple[str, ...] = ()


SegmentHandler = Callable[[Segment], Awaitable[None] | None]


def track_name(key: Hashable) -> str:
    """``citizen-video-1`` for the source key ``("citizen", "video", 1)``."""
    return "-".join(str(part) for part in key) if isinstance(key, tuple) else str(key)


def take_prefix(session_id: str, take: int) -> str:
    return session_id if take == 0 else f"{session_id}-t{take}"


def first_free_take(directory: Path, session_id: str, start: int = 0) -> int:
    """The first take from ``start`` with no segment file in the session's directory: a
    process restarted mid-session counts takes from 0 again and must not overwrite the
    files of a recording made before the restart."""
    take = start
    session_dir = directory / session_id
    while any(session_dir.glob(f"{take_prefix(session_id, take)}-[0-9][0-9][0-9][0-9].*")):
        take += 1
    return take


class SessionRecorder:
    def __init__(self, relay: RelaySession, settings: RecordingSettings,
                 on_segment: SegmentHandler | None = None, *, take: int = 0) -> None:
        """``take`` numbers the session's recordings (stop, then start again): files of
        take 0 are ``<session>-0000.webm``..., of take n ``<session>-t<n>-0000.webm``."""
        if not SAFE_NAME.fullmatch(relay.session_id):
            raise ValueError(f"session id {relay.session_id!r} is not safe as a file name")
        self.relay = relay
        self.settings = settings
        self.state = "ready"
        self.consent_id: str | None = None
        self.segments: list[Segment] = []
        self.dropped_frames = 0
        self._on_segment = on_segment
        self._prefix = take_prefix(relay.session_id, take)
        self._segmenter: Segmenter[EncodedFrame] = Segmenter(settings.segment_s,
                                                              settings.handover_s)
        self._clocks: dict[SourceKey, TrackClock] = {}
        self._listeners: dict[Source, Callable[[EncodedFrame], None]] = {}
        self._t0: dict[int, float] = {}
        self._unwatch: Callable[[], None] | None = None
        self._writer: _Writer | None = None
        self._callbacks: set[asyncio.Future[None]] = set()
        self._enqueued = 0
        self._overloaded = False
        self._epoch_offset = 0.0

    @property
    def directory(self) -> Path:
        return self.settings.directory / self.relay.session_id

    async def start(self, *, consent_id: str) -> None:
        """Begin recording every track of the session; ``consent_id`` names the consent
        record the citizen gave for it."""
        if not isinstance(consent_id, str) or not consent_id.strip():
            raise ConsentRequired()
        if self.state != "ready":
            raise RecordingStateError(self.state, "start")
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        self.consent_id = consent_id
        self.state = "recording"
        self._epoch_offset = time.time() - time.monotonic()
        loop = asyncio.get_running_loop()
        self._writer = _Writer(self.relay.session_id, loop, self._file_closed)
        self._writer.start()
        self._unwatch = self.relay.watch_sources(self._watch)
        logger.info("session %s: recording started (consent %s)", self.relay.session_id,
                    consent_id)

    async def stop(self) -> list[Segment]:
        """Close the current segment and wait until every segment is on disk."""
        if self.state != "recording":
            return list(self.segments)
        self.state = "stopping"
        self._detach()
        self._execute(self._segmenter.finish())
        assert self._writer is not None
        await self._writer.finish()
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)
        self.state = "stopped"
        logger.info("session %s: recording stopped, %d segments", self.relay.session_id,
                    len(self.segments))
        return list(self.segments)

    def _watch(self, source: Source) -> None:
        def listener(frame: EncodedFrame) -> None:
            self._frame(source.key, frame)

        self._listeners[source] = listener
        source.listen(listener)
        source.request_keyframe()

    def _detach(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        for source, listener in self._listeners.items():
            source.unlisten(listener)
        self._listeners.clear()

    def _frame(self, key: SourceKey, frame: EncodedFrame) -> None:
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = TrackClock(frame.clock_rate)
        t = clock.time(frame.timestamp, time.monotonic())
        assert self._writer is not None
        if self._enqueued - self._writer.done >= self.settings.max_backlog_frames:
            self.dropped_frames += 1
            if not self._overloaded:
                self._overloaded = True
                logger.warning("session %s: recording fell behind, dropping frames",
                               self.relay.session_id)
                self._execute(self._segmenter.rotate(t))
            return
        self._overloaded = False
        self._execute(self._segmenter.add(key, frame.kind == "video", frame.keyframe, t, frame))

    def _execute(self, actions: list[Action[EncodedFrame]]) -> None:
        writer = self._writer
        assert writer is not None
        for action in actions:
            if isinstance(action, Write):
                t0 = self._t0[action.index]
                frame = action.item
                ticks = round((action.t - t0) * frame.clock_rate)
                writer.put(("write", action.index, track_name(action.track), ticks,
                            frame.keyframe, frame.data, frame.codec))
                self._enqueued += 1
            elif isinstance(action, Open):
                self._t0[action.index] = action.t0
                tracks = [
                    (TrackSpec(track_name(key), item.kind, item.codec, item.clock_rate),
                     item.data)
                    for key, item in action.tracks
                ]
                stem = self.directory / f"{self._prefix}-{action.index:04d}"
                writer.put(("open", action.index, stem, tracks,
                            action.t0 + self._epoch_offset))
            elif isinstance(action, Close):
                writer.put(("close", action.index))
                self._t0.pop(action.index, None)
            elif isinstance(action, RequestKeyframes):
                for source in self._listeners:
                    source.request_keyframe()

    def _file_closed(self, closed: ClosedFile, index: int, started_at: float) -> None:
        assert self.consent_id is not None
        segment = Segment(self.relay.session_id, self.consent_id, index, closed.path,
                          closed.sha256, closed.duration_s, closed.size_bytes, started_at,
                          closed.tracks,
                          tuple(self.relay.codecs[k] for k in sorted(self.relay.codecs,
                                                                     reverse=True)))
        self.segments.append(segment)
        logger.info("session %s: segment %d closed, %.2f s, %d bytes", segment.session_id,
                    index, segment.duration_s, segment.size_bytes)
        if self._on_segment is not None:
            result = self._on_segment(segment)
            if result is not None:
                future = asyncio.ensure_future(result)
                self._callbacks.add(future)
                future.add_done_callback(self._callbacks.discard)


class _Writer:
    """The recording's writer thread: opens, fills and closes segment files in order."""

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop,
                 on_closed: Callable[[ClosedFile, int, float], None]) -> None:
        self.done = 0
        self._loop = loop
        self._on_closed = on_closed
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._files: dict[int, tuple[SegmentFile, float]] = {}
        self._parameter_sets: dict[str, tuple[bytes, bytes]] = {}
        self._finished: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, command: tuple[Any, ...]) -> None:
        self._queue.put(command)

    async def finish(self) -> None:
        self._queue.put(None)
        await self._finished

    def _run(self) -> None:
        try:
            while (command := self._queue.get()) is not None:
                try:
                    self._handle(command)
                except Exception:
                    logger.exception("recording %s failed", command[:2])
                    self._drop(command[1])
        finally:
            for index in list(self._files):
                self._close(index)
            self._call_soon(self._finished.set_result, None)

    def _handle(self, command: tuple[Any, ...]) -> None:
        match command:
            case ("write", index, track, ticks, keyframe, data, codec):
                self.done += 1
                entry = self._files.get(index)
                if entry is not None:
                    if codec == "H264" and keyframe:
                        data = self._with_parameter_sets(track, data)
                    entry[0].write(track, ticks, keyframe, data)
            case ("open", index, stem, tracks, started_at):
                tracks = [
                    (spec, self._with_parameter_sets(spec.name, first)
                     if spec.codec == "H264" else first)
                    for spec, first in tracks
                ]
                self._files[index] = (SegmentFile(stem, tracks, stem.name), started_at)
            case ("close", index):
                self._close(index)

    def _close(self, index: int) -> None:
        entry = self._files.pop(index, None)
        if entry is None:
            return
        segment_file, started_at = entry
        try:
            closed = segment_file.close()
        except Exception:
            logger.exception("closing segment %s failed", segment_file.part)
            return
        self._call_soon(self._on_closed, closed, index, started_at)

    def _drop(self, index: int) -> None:
        entry = self._files.pop(index, None)
        if entry is not None:
            entry[0].abandon()

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone; nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _with_parameter_sets(self, track: str, access_unit: bytes) -> bytes:
        """Keep the latest SPS/PPS; put them in front of an IDR picture that lacks them
        so every segment's first frame carries its decoder configuration."""
        sps = pps = b""
        has_idr = False
        for nal in annexb_nal_units(access_unit):
            nal_type = nal[0] & 0x1F if nal else 0
            if nal_type == H264_SPS:
                sps = nal
            elif nal_type == H264_PPS:
                pps = nal
            elif nal_type == H264_IDR:
                has_idr = True
        cached = self._parameter_sets.get(track)
        if sps and pps:
            self._parameter_sets[track] = (sps, pps)
            return access_unit
        if has_idr and cached is not None:
            start = b"\x00\x00\x00\x01"
            return start + (sps or cached[0]) + start + (pps or cached[1]) + access_unit
        return access_unit
