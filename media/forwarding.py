"""Encoded frames from one participant's incoming track to the other's outgoing track.

A :class:`Source` is a slot of a session (``role``, ``kind``, ``index``), not a
connection: it outlives reconnects, so the other side's :class:`ForwardedTrack` can be
negotiated before the sender joins and keeps working when the sender's peer connection
is replaced. A ForwardedTrack yields ``av.Packet`` objects, which ``RTCRtpSender`` only
re-packetises.

Keyframes: a video ForwardedTrack forwards nothing until a keyframe, and asks for one
when its sender starts, when the downstream receiver sends PLI/FIR, and while it waits
(the frame tap rate-limits the PLIs that reach the original sender).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from media.aiortc_internals import (
    EncodedFrame,
    request_keyframe,
    set_remb_policy,
    tap_encoded_frames,
)

logger = logging.getLogger(__name__)

SourceKey = tuple[str, str, int]
FrameSender = Callable[[EncodedFrame, int], bool]
QUEUE_FRAMES = {"audio": 50, "video": 30}
REMB_VALID_S = 5.0
TS_MOD = 1 << 32
TS_GAP = {"audio": 960, "video": 3000}


@dataclass(frozen=True, slots=True)
class BitratePolicy:
    """REMB the server sends upstream: at least ``floor_bps`` (aiortc's estimate follows the
    incoming rate, so a static scene would starve a document that appears later), at most
    what the slowest downstream receiver reported."""

    floor_bps: int = 600_000

    def apply(self, own_estimate: int, downstream: list[int]) -> int:
        value = max(self.floor_bps, own_estimate)
        return min([value, *downstream])


class Source:
    def __init__(self, key: SourceKey, policy: BitratePolicy) -> None:
        self.key = key
        self.kind = key[1]
        self._policy = policy
        self._receiver: RTCRtpReceiver | None = None
        self._generation = 0
        self._tracks: set[ForwardedTrack] = set()
        self._listeners: set[Callable[[EncodedFrame], None]] = set()

    def attach(self, receiver: RTCRtpReceiver) -> None:
        """A (new) upstream receiver for this slot; call before it starts receiving."""
        self._receiver = receiver
        self._generation += 1
        generation = self._generation
        tap_encoded_frames(receiver, lambda frame: self._deliver(frame, generation))
        set_remb_policy(receiver, self._remb)
        if any(track.waiting_for_keyframe for track in self._tracks):
            self.request_keyframe()

    def detach(self, receiver: RTCRtpReceiver) -> None:
        if self._receiver is receiver:
            self._receiver = None

    def subscribe(self, track: ForwardedTrack) -> None:
        self._tracks.add(track)

    def unsubscribe(self, track: ForwardedTrack) -> None:
        self._tracks.discard(track)

    def listen(self, listener: Callable[[EncodedFrame], None]) -> None:
        """Also hand every frame to ``listener`` (recorder, snapshot); quick, on the loop."""
        self._listeners.add(listener)

    def unlisten(self, listener: Callable[[EncodedFrame], None]) -> None:
        self._listeners.discard(listener)

    def request_keyframe(self) -> None:
        if self._receiver is not None and self.kind == "video":
            request_keyframe(self._receiver)

    def _deliver(self, frame: EncodedFrame, generation: int) -> None:
        if generation != self._generation:
            return
        for track in self._tracks:
            track.push(frame, generation)
        for listener in list(self._listeners):
            listener(frame)

    def _remb(self, estimate: int) -> int:
        now = time.monotonic()
        downstream = [t.remb for t in self._tracks if t.remb and now - t.remb_at < REMB_VALID_S]
        return self._policy.apply(estimate, downstream)


class ForwardedTrack(MediaStreamTrack):
    """The server's outgoing track towards one participant, fed by a :class:`Source`."""

    def __init__(self, source: Source) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._queue: asyncio.Queue[tuple[EncodedFrame, int] | None] = asyncio.Queue()
        self._started = False
        self.waiting_for_keyframe = source.kind == "video"
        self.remb = 0
        self.remb_at = 0.0
        self.forwarded = 0
        self._generation = 0
        self._offset = 0
        self._last_out: int | None = None
        self._send: FrameSender | None = None
        source.subscribe(self)

    def send_with(self, send: FrameSender) -> None:
        """From now on hand every admitted frame and its outgoing timestamp to ``send``
        at once, on the frame tap's callback, instead of queueing it for ``recv``
        (which then only waits for the end). ``send`` returns whether it sent."""
        self._send = send
        self._start()

    def push(self, frame: EncodedFrame, generation: int) -> None:
        if not self.admits(frame):
            return
        if self._send is not None:
            if self._send(frame, self.out_timestamp(frame, generation)):
                self.forwarded += 1
            return
        if self._queue.qsize() >= QUEUE_FRAMES[self.kind]:
            logger.warning("%s: sender fell behind, dropping %d frames", self._source.key,
                           self._queue.qsize())
            while not self._queue.empty():
                self._queue.get_nowait()
            self.waiting_for_keyframe = self.kind == "video"
            self._source.request_keyframe()
            return
        self._queue.put_nowait((frame, self.out_timestamp(frame, generation)))

    def admits(self, frame: EncodedFrame) -> bool:
        """Whether ``frame`` is forwarded: the track is live and its sender started, and
        it does not wait for a keyframe (while it does, each other frame asks for one)."""
        if not self._started or self.readyState != "live":
            return False
        if self.waiting_for_keyframe:
            if not frame.keyframe:
                self._source.request_keyframe()
                return False
            self.waiting_for_keyframe = False
        return True

    def out_timestamp(self, frame: EncodedFrame, generation: int) -> int:
        """The RTP timestamp ``frame`` goes out with: continuous across the sender's
        reconnects (a new ``generation`` rebases the offset)."""
        if generation != self._generation:
            self._rebase(frame.timestamp, generation)
        out = (frame.timestamp + self._offset) % TS_MOD
        self._last_out = out
        return out

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        self._start()
        item = await self._queue.get()
        if item is None:
            raise MediaStreamError
        frame, out = item
        packet = av.Packet(frame.data)
        packet.pts = out
        packet.time_base = fractions.Fraction(1, frame.clock_rate)
        self.forwarded += 1
        return packet

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._source.request_keyframe()

    def keyframe_requested(self) -> None:
        """The downstream receiver lost the picture (PLI/FIR)."""
        self._source.request_keyframe()

    def remb_received(self, bitrate: int) -> None:
        self.remb = bitrate
        self.remb_at = time.monotonic()

    def stop(self) -> None:
        if self.readyState == "live":
            self._source.unsubscribe(self)
            self._queue.put_nowait(None)
        super().stop()

    def _rebase(self, timestamp: int, generation: int) -> None:
        """Keep this track's RTP timeline continuous when the upstream sender is replaced."""
        self._generation = generation
        if self._last_out is None:
            self._offset = 0
        else:
            self._offset = (self._last_out + TS_GAP[self.kind] - timestamp) % TS_MOD
