"""Client peers for the relay benchmark: one process hosting many peers, driven over stdio.

Each peer sends one video and one audio track replayed from pre-encoded clips (no
encoder runs here). A frame is known by its clip index: a sent frame's index is logged
with its send time. How a peer sends and receives depends on whether it is *sampled*:

- A sampled peer (``"sample": true`` in ``offer``/``answer``) receives through aiortc's
  whole receive path (statistics, bandwidth estimate, NACK, receiver reports), tapped
  for complete encoded frames; a frame is looked up by its bytes (pass-through is
  bit-exact) or, with ``--decode`` (the transcoding baseline changes the bytes), decoded
  and read from the frame number drawn in its pixels. It sends through
  ``RTCRtpSender`` (packetisation, header extensions, SRTP), or with
  ``--lean-send-sampled`` like a lean peer (the same bytes, from the pacer).
- Any other peer is lean (``bench/relay_lean.py``): aiortc negotiates ICE, DTLS and
  SRTP with the server and handles RTCP, but the peer sends pre-packetised RTP and
  only counts what it receives (:class:`PacketCounter`), from one timer per process.
  A video frame is known by the first 32 bytes of its payload (unique among the clip's
  frames) and arrives with its marker-bit packet; RTP sequence gaps give packet loss.
  SRTP leaves the RTP header in the clear, so the counter decrypts only a frame's first
  packet (normally one in 2.3 video packets here) and one audio packet in
  ``AUDIO_CHECK_EVERY``; those are authenticated, and the report gives how many were
  checked and how many failed (``srtp``).
  Such a peer costs the server a little less than a browser would (no receiver
  reports, REMB or NACKs to handle) and the clients much less.

Times are ``time.monotonic()``, which all processes on the machine share.

Protocol: one JSON object per line on stdin, one reply per line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from bench.loop_lag import LoopLag
from bench.relay_lean import (
    DormantTrack,
    IncomingTap,
    LeanStream,
    Pacer,
    check_internals,
    packetise,
)
from media.aiortc_internals import EncodedFrame, on_rtcp_feedback, tap_encoded_frames
from media.synthetic import read_frame_number

Log = list[tuple[int, float]]
Open = Callable[[bytes], bytes | None]
PREFIX = 32
RTP_HEADER = struct.Struct("!BBHII")
AUDIO_CHECK_EVERY = 8


def rtp_payload(data: bytes) -> bytes:
    """The payload of a decrypted RTP packet: CSRCs, header extensions and padding
    skipped, no ``RtpPacket`` built."""
    first = data[0]
    offset = RTP_HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    end = len(data) - data[-1] if first & 0x20 else len(data)
    return data[offset:end]


def load_clip(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        frames.append(data[offset + 4: offset + 4 + size])
        offset += 4 + size
    return frames


def save_clip(path: Path, frames: list[bytes] | tuple[bytes, ...]) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(f)) + f for f in frames))


class TimedReplay(MediaStreamTrack):
    """Replays frames in real time, logging (clip index, send time); a keyframe request
    restarts at frame 0, the only keyframe. After the last frame it goes on from 1."""

    def __init__(self, kind: str, frames: list[bytes], clock_rate: int, period: float) -> None:
        super().__init__()
        self.kind = kind
        self.frames = frames
        self.log: Log = []
        self._clock_rate = clock_rate
        self._period = period
        self._ticks = round(clock_rate * period)
        self._index = 0
        self._count = 0
        self._start: float | None = None

    def request_keyframe(self) -> None:
        self._index = 0

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self._count * self._period - now
        if wait > 0:
            await asyncio.sleep(wait)
        index = self._index
        self._index = index + 1 if index + 1 < len(self.frames) else 1
        packet = av.Packet(self.frames[index])
        packet.pts = self._count * self._ticks
        packet.time_base = fractions.Fraction(1, self._clock_rate)
        self._count += 1
        self.log.append((index, time.monotonic()))
        return packet


class Receiver:
    """What arrived on one receiving track: (clip index, arrival time) per video frame."""

    def __init__(self, kind: str, index_of: dict[bytes, int], decode: bool) -> None:
        self.kind = kind
        self.log: Log = []
        self.count = 0
        self.unknown = 0
        self._index_of = index_of
        self._decoder: Any = av.CodecContext.create("libvpx", "r") if decode else None

    def take(self, frame: EncodedFrame) -> None:
        now = time.monotonic()
        self.count += 1
        if self.kind != "video":
            return
        index = self._index_of.get(frame.data)
        if index is None and self._decoder is not None:
            try:
                for picture in self._decoder.decode(av.Packet(frame.data)):
                    index = read_frame_number(picture.to_ndarray(format="bgr24"))
            except av.FFmpegError:
                index = None
        if index is None:
            self.unknown += 1
        else:
            self.log.append((index, now))


class PacketCounter:
    """Stands in for a receiver's RTP packet handler: counts, identifies video frames by
    their payload prefix, and does nothing else (see the module docstring)."""

    def __init__(self, kind: str, index_of_prefix: dict[bytes, int]) -> None:
        self.kind = kind
        self.log: Log = []
        self.count = 0
        self.unknown = 0
        self.packets = 0
        self._index_of = index_of_prefix
        self._frame_ts: int | None = None
        self._frame_index: int | None = None
        self._ssrc: int | None = None
        self._first_seq = 0
        self._highest = 0

    @property
    def expected(self) -> int:
        return self._highest - self._first_seq + 1 if self._ssrc is not None else 0

    async def handle(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.take(packet.ssrc, packet.sequence_number, packet.timestamp, packet.marker,
                  packet.payload)

    def take_srtp(self, data: bytes, open_: Open) -> None:
        """One SRTP packet as it arrived (a lean peer's incoming tap). Sequence number,
        timestamp, marker and SSRC are read from the clear header; ``open_`` decrypts
        and authenticates only the packets whose payload is needed: a video frame's
        packets until its first one (VP8 partition start, whose payload prefix names the
        frame) is found, normally just that one, and one audio packet in
        ``AUDIO_CHECK_EVERY``. A packet that fails authentication is not counted."""
        _, second, seq, timestamp, ssrc = RTP_HEADER.unpack_from(data)
        if self._ssrc is not None and ssrc != self._ssrc:
            return  # a retransmission stream: no NACK is sent, so none is expected
        payload = None
        if self.kind == "video":
            if timestamp != self._frame_ts or self._frame_index is None:
                plain = open_(data)
                if plain is None:
                    return
                payload = rtp_payload(plain)
        elif self.packets % AUDIO_CHECK_EVERY == 0 and open_(data) is None:
            return
        self.take(ssrc, seq, timestamp, second >> 7, payload)

    def take(self, ssrc: int, seq: int, timestamp: int, marker: int,
             payload: bytes | None) -> None:
        """One packet; ``payload`` None: not decrypted (the frame is already known)."""
        if self._ssrc is None:
            self._ssrc, self._first_seq, self._highest = ssrc, seq, seq
        elif ssrc != self._ssrc:
            return  # a retransmission stream: no NACK is sent, so none is expected
        self.packets += 1
        near = self._highest & ~0xFFFF | seq
        if near < self._highest - 0x8000:
            near += 0x10000
        elif near > self._highest + 0x8000:
            near -= 0x10000
        self._highest = max(self._highest, near)
        if self.kind != "video":
            self.count += 1
            return
        if timestamp != self._frame_ts:
            self._frame_ts, self._frame_index = timestamp, None
        if payload and payload[0] & 0x17 == 0x10:  # VP8: start of partition 0
            try:
                _, data = VpxPayloadDescriptor.parse(payload)
            except ValueError:
                return
            self._frame_index = self._index_of.get(data[:PREFIX])
        if marker:
            self.count += 1
            if self._frame_index is None:
                self.unknown += 1
            else:
                self.log.append((self._frame_index, time.monotonic()))
            self._frame_ts = None


class Clients:
    def __init__(self, video: list[bytes], audio: list[bytes], decode: bool,
                 lean_send_sampled: bool = False) -> None:
        self.video = video
        self.audio = audio
        self.decode = decode
        self.lean_send_sampled = lean_send_sampled
        self.index_of = {data: n for n, data in enumerate(video)}
        self.index_of_prefix = {data[:PREFIX]: n for n, data in enumerate(video)}
        if len(self.index_of_prefix) != len(video):
            raise ValueError(f"clip frames are not unique in their first {PREFIX} bytes")
        check_internals()
        self.lean_clips = {"video": packetise("video", video, 90_000, 1 / 30),
                           "audio": packetise("audio", audio, 48_000, 0.02)}
        self.pacer = Pacer()
        self.peers: dict[str, RTCPeerConnection] = {}
        self.senders: dict[str, TimedReplay | LeanStream] = {}
        self.receivers: dict[str, Receiver | PacketCounter] = {}
        self.sampled: set[str] = set()
        self.taps: list[IncomingTap] = []
        self.lag = LoopLag()
        self._lag_started = False

    def _peer(self, peer_id: str, sample: bool) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers[peer_id] = pc
        vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs
               if c.name in ("VP8", "rtx")]
        if sample and not self.lean_send_sampled:
            for track in (TimedReplay("video", self.video, 90_000, 1 / 30),
                          TimedReplay("audio", self.audio, 48_000, 0.02)):
                transceiver = pc.addTransceiver(track, direction="sendrecv")
                if track.kind == "video":
                    transceiver.setCodecPreferences(vp8)
                on_rtcp_feedback(transceiver.sender, track.request_keyframe)
                receiver = Receiver(track.kind, self.index_of, self.decode)
                tap_encoded_frames(transceiver.receiver, receiver.take)
                self.senders[f"{peer_id}/{track.kind}"] = track
                self.receivers[f"{peer_id}/{track.kind}"] = receiver
        elif sample:
            for kind in ("video", "audio"):
                transceiver = pc.addTransceiver(DormantTrack(kind), direction="sendrecv")
                if kind == "video":
                    transceiver.setCodecPreferences(vp8)
                receiver = Receiver(kind, self.index_of, self.decode)
                tap_encoded_frames(transceiver.receiver, receiver.take)
                self.senders[f"{peer_id}/{kind}"] = LeanStream(
                    self.lean_clips[kind], transceiver.sender, self.pacer)
                self.receivers[f"{peer_id}/{kind}"] = receiver
        else:
            counters = {kind: PacketCounter(kind, self.index_of_prefix)
                        for kind in ("video", "audio")}
            incoming = IncomingTap({kind: c.take_srtp for kind, c in counters.items()},
                                   self.pacer)
            self.taps.append(incoming)
            for kind, counter in counters.items():
                transceiver = pc.addTransceiver(DormantTrack(kind), direction="sendrecv")
                if kind == "video":
                    transceiver.setCodecPreferences(vp8)
                # RTP arriving before the tap is in place (DTLS up, not yet sending).
                transceiver.receiver._handle_rtp_packet = counter.handle  # type: ignore[method-assign]
                self.senders[f"{peer_id}/{kind}"] = LeanStream(
                    self.lean_clips[kind], transceiver.sender, self.pacer, incoming)
                self.receivers[f"{peer_id}/{kind}"] = counter
        if sample:
            self.sampled.add(peer_id)
        return pc

    def take_lag(self) -> dict[str, float]:
        """Loop lag since the last call: from the pacer's ticks when lean peers run (a
        second timer would cost as many wake-ups again), else from a 20 ms timer."""
        if self.pacer.running:
            return self.pacer.take_lag()
        if not self._lag_started:
            self._lag_started = True
            self.lag.start()
        return self.lag.take()

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "offer":
            pc = self._peer(request["id"], request.get("sample", True))
            await pc.setLocalDescription(await pc.createOffer())
            return {"sdp": pc.localDescription.sdp}
        if op == "accept":
            await self.peers[request["id"]].setRemoteDescription(
                RTCSessionDescription(request["sdp"], "answer"))
            return {}
        if op == "answer":
            pc = self._peer(request["id"], request.get("sample", True))
            await pc.setRemoteDescription(RTCSessionDescription(request["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            return {"sdp": pc.localDescription.sdp}
        if op == "report":
            return {
                "sent": {k: t.log for k, t in self.senders.items() if t.kind == "video"},
                "received": {k: r.log for k, r in self.receivers.items() if r.kind == "video"},
                "counts": {k: r.count for k, r in self.receivers.items()},
                "unknown": sum(r.unknown for r in self.receivers.values()),
                "sampled": sorted(self.sampled),
                "rtp": {k: [r.packets, r.expected] for k, r in self.receivers.items()
                        if isinstance(r, PacketCounter)},
                "srtp": {"packets": sum(t.packets for t in self.taps),
                         "opened": sum(t.opened for t in self.taps),
                         "failed": sum(t.failed for t in self.taps),
                         "send_errors": self.pacer.send_errors},
            }
        if op == "states":
            return {
                "connection": {k: pc.connectionState for k, pc in self.peers.items()},
                "counts": {k: r.count for k, r in self.receivers.items()},
                "lag": self.take_lag(),
                "pacer_cpu_s": self.pacer.cpu_s,
            }
        if op == "close":
            self.pacer.stop()
            await asyncio.gather(*(pc.close() for pc in self.peers.values()))
            return {}
        raise ValueError(f"unknown op {op!r}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--decode", action="store_true")
    parser.add_argument("--lean-send-sampled", action="store_true")
    args = parser.parse_args()
    clients = Clients(load_clip(args.video), load_clip(args.audio), args.decode,
                      args.lean_send_sampled)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True}), flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        request = json.loads(line)
        reply = await clients.handle(request)
        print(json.dumps(reply), flush=True)
        if request["op"] == "close":
            break


if __name__ == "__main__":
    asyncio.run(main())
