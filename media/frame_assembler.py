"""Encoded frames from RTP packets, completed on the marker bit.

aiortc's own jitter buffer releases frame N only when the first packet of frame N+1
arrives, which costs one frame interval per hop. The marker bit (RFC 3551; set by
Chromium and aiortc on the last packet of a video frame) says the frame is complete
now. Audio packets are complete frames on their own.

Loss handling, which the pass-through relay needs because nothing downstream can
conceal a half frame: a frame with a missing packet waits for the retransmission for
at most ``stall_timeout`` seconds; then it is dropped, the assembler asks for a
keyframe and forwards nothing until one arrives (a delta frame after a gap would
only paint garbage downstream).

Pure logic: packets and a clock value in, frames and a keyframe wish out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media.bitstream import is_keyframe, may_start_keyframe

SEQ_MOD = 1 << 16


class RtpLike(Protocol):
    """The fields of an RTP packet the assembler reads (aiortc's ``RtpPacket`` fits)."""

    sequence_number: int
    timestamp: int
    marker: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class AssembledFrame:
    timestamp: int
    data: bytes
    keyframe: bool


@dataclass(slots=True)
class _Held:
    timestamp: int
    marker: bool
    payload: bytes
    data: bytes
    arrival: float


class SequenceUnwrapper:
    """Maps 16-bit RTP sequence numbers onto a monotonic integer line."""

    def __init__(self) -> None:
        self._highest: int | None = None

    def extend(self, seq: int) -> int:
        if self._highest is None:
            self._highest = seq + SEQ_MOD
            return self._highest
        delta = (seq - self._highest + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2
        extended = self._highest + delta
        self._highest = max(self._highest, extended)
        return extended


class AudioFrameAssembler:
    """Every audio packet is a frame; duplicates and packets older than the last are dropped."""

    def __init__(self) -> None:
        self._seq = SequenceUnwrapper()
        self._last: int | None = None

    def add(self, packet: RtpLike, data: bytes, now: float) -> tuple[list[AssembledFrame], bool]:
        seq = self._seq.extend(packet.sequence_number)
        if self._last is not None and seq <= self._last:
            return [], False
        self._last = seq
        return [AssembledFrame(packet.timestamp, data, keyframe=True)], False


class VideoFrameAssembler:
    def __init__(self, codec: str, *, stall_timeout: float = 0.25, capacity: int = 512) -> None:
        self.codec = codec
        self._stall_timeout = stall_timeout
        self._capacity = capacity
        self._seq = SequenceUnwrapper()
        self._held: dict[int, _Held] = {}
        self._next: int | None = None
        self._need_keyframe = True

    def add(self, packet: RtpLike, data: bytes, now: float) -> tuple[list[AssembledFrame], bool]:
        """Take one packet; return the frames it completed and whether a keyframe is needed."""
        seq = self._seq.extend(packet.sequence_number)
        if (self._next is not None and seq < self._next) or seq in self._held:
            return [], False
        self._held[seq] = _Held(
            packet.timestamp, bool(packet.marker), packet.payload, data, now
        )
        frames, want_keyframe = self._drain()
        if self._held and self._stalled(now):
            self._drop_stuck_frame()
            more, _ = self._drain()
            frames.extend(more)
            want_keyframe = True
        return frames, want_keyframe

    def _drain(self) -> tuple[list[AssembledFrame], bool]:
        """Release every complete frame; a delta frame while a keyframe is awaited is dropped."""
        frames: list[AssembledFrame] = []
        dropped_delta = False
        while self._held and (self._next is not None or self._resynchronise()):
            completed = self._complete_frame()
            if completed is None:
                break
            if self._need_keyframe and not completed.keyframe:
                dropped_delta = True
                continue
            self._need_keyframe = False
            frames.append(completed)
        return frames, dropped_delta

    def _complete_frame(self) -> AssembledFrame | None:
        assert self._next is not None
        first = self._held.get(self._next)
        if first is None:
            return None
        parts: list[bytes] = []
        seq = self._next
        while True:
            held = self._held.get(seq)
            if held is None:
                return None
            if held.timestamp != first.timestamp:
                end = seq - 1
                break
            parts.append(held.data)
            if held.marker:
                end = seq
                break
            seq += 1
        for done in range(self._next, end + 1):
            del self._held[done]
        self._next = end + 1
        data = b"".join(parts)
        return AssembledFrame(first.timestamp, data, is_keyframe(self.codec, data))

    def _resynchronise(self) -> bool:
        """Find where the next frame starts among the held packets after a loss or at start."""
        for seq in sorted(self._held):
            held = self._held[seq]
            before = self._held.get(seq - 1)
            boundary = before is not None and (before.marker or before.timestamp != held.timestamp)
            if boundary or may_start_keyframe(self.codec, held.payload):
                for stale in [s for s in self._held if s < seq]:
                    del self._held[stale]
                self._next = seq
                return True
        return False

    def _stalled(self, now: float) -> bool:
        """A gap waited too long for its retransmission (a slow, paced keyframe is not a gap)."""
        if len(self._held) > self._capacity:
            return True
        if self._next is None:
            return now - self._held[min(self._held)].arrival > self._stall_timeout
        missing = self._next
        while missing in self._held:
            missing += 1
        after_gap = [held.arrival for seq, held in self._held.items() if seq > missing]
        return bool(after_gap) and now - min(after_gap) > self._stall_timeout

    def _drop_stuck_frame(self) -> None:
        oldest = min(self._held)
        if len(self._held) > self._capacity:
            self._held.clear()
        else:
            stuck = self._held[oldest].timestamp
            for seq in [s for s, h in self._held.items() if h.timestamp == stuck]:
                del self._held[seq]
        self._next = None
        self._need_keyframe = True
