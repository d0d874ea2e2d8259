"""Forwarded frames sent from the frame tap's callback, without aiortc's per-packet path.

aiortc's ``RTCRtpSender`` takes each forwarded frame from the track through an
``asyncio.Queue`` and an ``av.Packet``, builds an ``RtpPacket`` per packet with its
header extensions, and awaits four coroutine layers down to ``sendto``; on this machine
that was most of a relay worker's CPU (docs/operations.md, *Media capacity*). A
:class:`LeanSender` takes over one sender whose track is a
:class:`~media.forwarding.ForwardedTrack` once aiortc has negotiated it: each frame the
track admits is packetised by aiortc's own packetiser for the codec and written
synchronously by :mod:`media.rtp_wire` (header template, SRTP, one ``sendto`` per
packet).

What aiortc's path did and stays: the track's keyframe gate and its outgoing timestamp
(continuous across the upstream sender's reconnects) decide what is sent and when;
aiortc's sender still runs RTCP: sender reports carry this stream's counts
(``SR_FIELDS`` written after each frame), a NACK is answered with RTX from this
sender's own history, PLI/FIR/REMB reach the ``on_rtcp_feedback`` hooks. Recorder and
snapshot listeners are the source's, untouched.

Codecs: VP8, H.264 (aiortc's packetisers, so the payloads are those aiortc would send)
and Opus (one packet per frame). Any other codec keeps aiortc's path, as does every
sender when ``RelaySettings.lean_send`` is off.

The hooks are per sender instance (``send`` wrapped, ``_retransmit`` replaced), not on
the class. Private aiortc names used, checked by
:func:`media.aiortc_internals.check_compatible`: ``RTCRtpSender._retransmit``,
``_rtx_ssrc``, ``Vp8Encoder._packetize``, ``H264Encoder._packetize`` and
``_split_bitstream``, and those of :mod:`media.rtp_wire`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from aiortc import RTCRtpSender
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RTP_HISTORY_SIZE

from media.aiortc_internals import EncodedFrame
from media.forwarding import ForwardedTrack
from media.rtp_wire import (
    SR_FIELDS,
    TS_MOD,
    RtpWire,
    follow_pair,
    retransmit,
    send_frame,
    wire_for,
)

logger = logging.getLogger(__name__)

PICTURE_ID_MOD = 1 << 15
SEQ_START_MAX = 32768
"""aiortc starts sequence numbers below 2**15 so SRTP's rollover guess holds."""
_SEND = "send"
_RETRANSMIT = "_retransmit"

Packetiser = Callable[[bytes], list[bytes]]


class _Vp8:
    """aiortc's VP8 packetiser with a picture id per outgoing stream, as ``Vp8Encoder``."""

    def __init__(self) -> None:
        self.picture_id = secrets.randbelow(PICTURE_ID_MOD)

    def __call__(self, data: bytes) -> list[bytes]:
        payloads = Vp8Encoder._packetize(data, self.picture_id)
        self.picture_id = (self.picture_id + 1) % PICTURE_ID_MOD
        return payloads


def _h264(data: bytes) -> list[bytes]:
    return H264Encoder._packetize(H264Encoder._split_bitstream(data))


def _opus(data: bytes) -> list[bytes]:
    return [data]


PACKETISERS: dict[str, Callable[[], Packetiser]] = {
    "video/vp8": _Vp8,
    "video/h264": lambda: _h264,
    "audio/opus": lambda: _opus,
}
"""Codec (lower-case MIME type) -> a new packetiser for one outgoing stream."""


def packetiser_for(mime_type: str) -> Packetiser | None:
    make = PACKETISERS.get(mime_type.lower())
    return None if make is None else make()


class LeanSender:
    """Sends ``track``'s frames on ``sender``'s stream once aiortc has negotiated it."""

    def __init__(self, sender: RTCRtpSender, track: ForwardedTrack) -> None:
        self.sender = sender
        self.track = track
        self.codec: str | None = None
        self.wire: RtpWire | None = None
        """Set when the lean path took over (aiortc's sender started with a codec it
        packetises); None while negotiating or when aiortc's path sends."""
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0
        self._packetise: Packetiser | None = None
        self._seq = secrets.randbelow(SEQ_START_MAX)
        self._rtx_seq = secrets.randbelow(SEQ_START_MAX)
        self._ts_origin = secrets.randbelow(TS_MOD)
        self._history: list[bytes | None] = [None] * RTP_HISTORY_SIZE
        self._aiortc_send: Callable[[RTCRtpSendParameters], Awaitable[None]] = sender.send
        setattr(sender, _SEND, self._send)

    @property
    def active(self) -> bool:
        return self.wire is not None

    async def _send(self, parameters: RTCRtpSendParameters) -> None:
        """aiortc's ``send`` (RTCP task, routing, RTX payload type), then the lean path."""
        await self._aiortc_send(parameters)
        if self.codec is not None:
            return  # called again by a later negotiation: already decided
        self.codec = parameters.codecs[0].mimeType
        packetise = packetiser_for(self.codec)
        if packetise is None:
            logger.info("%s: aiortc's sender sends it", self.codec)
            return
        self.wire = wire_for(self.sender, parameters)
        self._packetise = packetise
        setattr(self.sender, _RETRANSMIT, self._retransmit)
        self.track.send_with(self._send_frame)

    def _send_frame(self, frame: EncodedFrame, out_timestamp: int) -> bool:
        wire, packetise = self.wire, self._packetise
        assert wire is not None and packetise is not None
        if wire.transport.state != "connected":
            return False
        follow_pair(wire)
        timestamp = (self._ts_origin + out_timestamp) % TS_MOD
        payloads = packetise(frame.data)
        self._seq, ntp, octets = send_frame(wire, payloads, timestamp, self._seq,
                                            self._history)
        self.packets += len(payloads)
        self.octets += octets
        sender = self.sender
        for name, value in zip(SR_FIELDS, (ntp, timestamp, self.packets, self.octets),
                               strict=True):
            setattr(sender, name, value)
        return True

    async def _retransmit(self, sequence_number: int) -> None:
        """``RTCRtpSender._retransmit`` for this sender: RTX from the lean history."""
        assert self.wire is not None
        before = self._rtx_seq
        self._rtx_seq = retransmit(self.wire, self._history, sequence_number,
                                   self._rtx_seq, self.sender._rtx_ssrc)
        if self._rtx_seq != before:
            self.retransmitted += 1
