"""Experiment, bench only: the relay's sending legs written like the lean client.

What would the proposal in docs/operations.md ("Media capacity") save? Without changing
media/, :func:`install` makes every ``RTCRtpSender`` of this process whose track is a
:class:`~media.forwarding.ForwardedTrack` send forwarded frames synchronously, from the
frame tap's callback: packetised by aiortc's VP8 packetiser (Opus: one packet per
frame), header from a template, SRTP, ``sendto`` (media/rtp_wire.py) -- no queue, no
task switch, no ``av.Packet`` or ``RtpPacket``, no ``await`` per packet. The track's own
keyframe gating and timestamp rebasing are kept (its private fields are used), RTCP
stays aiortc's: sender reports carry this stream's counts, a NACK is answered with RTX
from a history, PLI and REMB still reach the product's ``on_rtcp_feedback`` hooks.

Used by ``bench/relay_server.py --lean-send`` (one process: the patch does not reach
worker processes). Other codecs than VP8 and Opus keep aiortc's path.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RTP_HISTORY_SIZE

from media.aiortc_internals import EncodedFrame
from media.forwarding import ForwardedTrack
from media.rtp_wire import SR_FIELDS, TS_MOD, retransmit, send_frame, wire_for

PICTURE_ID_MOD = 1 << 15
_SEND = "send"


class LeanForwarder:
    """Sends one ForwardedTrack's frames on its sender's negotiated stream."""

    def __init__(self, sender: RTCRtpSender, parameters: RTCRtpSendParameters,
                 track: ForwardedTrack) -> None:
        self.track = track
        self.sender = sender
        self.wire = wire_for(sender, parameters)
        self.vp8 = parameters.codecs[0].mimeType.lower() == "video/vp8"
        self.picture_id = random.randrange(PICTURE_ID_MOD)
        self.seq = random.randrange(32768)
        self.rtx_seq = random.randrange(32768)
        self.ts_origin = random.randrange(TS_MOD)
        self.history: list[bytes | None] = [None] * RTP_HISTORY_SIZE
        self.packets = 0
        self.octets = 0
        track.push = self.push  # type: ignore[method-assign]
        setattr(sender, "_retransmit", self._retransmit)  # noqa: B010

    def push(self, frame: EncodedFrame, generation: int) -> None:
        """ForwardedTrack.push, sending at once instead of queueing for aiortc's sender."""
        track = self.track
        if not track.admits(frame):
            return
        out = track.out_timestamp(frame, generation)
        if self.wire.transport.state != "connected":
            return
        if self.vp8:
            payloads = Vp8Encoder._packetize(frame.data, self.picture_id)
            self.picture_id = (self.picture_id + 1) % PICTURE_ID_MOD
        else:
            payloads = [frame.data]
        timestamp = (self.ts_origin + out) % TS_MOD
        self.seq, ntp, octets = send_frame(self.wire, payloads, timestamp, self.seq,
                                           self.history)
        self.packets += len(payloads)
        self.octets += octets
        track.forwarded += 1
        for name, value in zip(SR_FIELDS, (ntp, timestamp, self.packets, self.octets),
                               strict=True):
            setattr(self.sender, name, value)

    async def _retransmit(self, sequence_number: int) -> None:
        self.rtx_seq = retransmit(self.wire, self.history, sequence_number, self.rtx_seq,
                                  self.sender._rtx_ssrc)


def install() -> Callable[[], None]:
    """Patch ``RTCRtpSender.send`` in this process; returns the function that undoes it."""
    original: Callable[[RTCRtpSender, RTCRtpSendParameters], Awaitable[None]] = (
        RTCRtpSender.send)

    async def send(self: RTCRtpSender, parameters: RTCRtpSendParameters) -> None:
        await original(self, parameters)
        track: Any = self.track
        name = parameters.codecs[0].mimeType.lower()
        if isinstance(track, ForwardedTrack) and name in ("video/vp8", "audio/opus"):
            LeanForwarder(self, parameters, track)

    setattr(RTCRtpSender, _SEND, send)

    def uninstall() -> None:
        setattr(RTCRtpSender, _SEND, original)

    return uninstall
