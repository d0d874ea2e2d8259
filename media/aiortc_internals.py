"""The one module that touches aiortc's private names (aiortc pinned to 1.16.x).

aiortc has no public pass-through API: ``RTCRtpReceiver`` always decodes, and a keyframe
request or REMB arriving at an ``RTCRtpSender`` only reaches its encoder, which
pre-encoded packets bypass. The private names used, all checked by
:func:`check_compatible`:

- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``: replaced by a frame tap with the
  same ``add(packet) -> (pli_flag, frame)`` contract. The tap completes frames on the
  marker bit, hands them to a sink and returns no frame, so the decoder thread idles.
  Its ``pli_flag`` makes the receiver send a PLI itself, which is how keyframes are
  requested upstream.
- ``RTCRtpReceiver._RTCRtpReceiver__codecs``: payload type -> negotiated codec.
- ``RtpPacket._data``: the depayloaded bytes the receiver stores before ``add``.
- ``RTCRtpReceiver._RTCRtpReceiver__remote_bitrate_estimator``: wrapped so the REMB the
  server sends upstream can be floored and capped.
- ``RTCRtpSender._handle_rtcp_packet``: wrapped per instance to see PLI/FIR/REMB from
  the receiving participant.
- The lean sender's (:mod:`media.lean_sender`, :mod:`media.rtp_wire`), checked by
  :func:`lean_send_missing`: ``RTCRtpSender._ssrc``, ``_rtx_ssrc``, ``_retransmit``
  (replaced per instance) and the sender-report fields; ``RTCDtlsTransport._tx_srtp``;
  ``RTCIceTransport._connection``; ``aioice.Connection._nominated``; the packetisers
  ``Vp8Encoder._packetize``, ``H264Encoder._packetize`` and ``_split_bitstream``;
  and the lean receive path's (:mod:`media.lean_receive`): ``aioice.Connection.data_received``
  (replaced per instance), ``RTCDtlsTransport._rx_srtp`` and ``_handle_rtp_data``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aioice
import aiortc
from aioice.ice import StunProtocol
from aiortc import (
    RTCDtlsTransport,
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_FIR, RTCP_PSFB_PLI, RtcpPsfbPacket, unpack_remb_fci

from media.errors import MediaInternalsChanged
from media.frame_assembler import AudioFrameAssembler, VideoFrameAssembler
from media.rtp_wire import SR_FIELDS

logger = logging.getLogger(__name__)

TESTED_VERSIONS = ("1.16.",)
KEYFRAME_REQUEST_INTERVAL_S = 0.3

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_CODECS = "_RTCRtpReceiver__codecs"
_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
_SENDER_RTCP = "_handle_rtcp_packet"


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame as the remote sender produced it.

    ``timestamp`` is the sender's RTP timestamp (random origin, wraps at 2**32) in units of
    ``clock_rate``. ``data`` is what a decoder takes: the VP8 frame, the H.264 access unit
    in Annex B, the Opus packet.
    """

    kind: str
    codec: str
    clock_rate: int
    timestamp: int
    data: bytes
    keyframe: bool


FrameSink = Callable[[EncodedFrame], None]


class _FrameTap:
    """Stands in for the receiver's ``JitterBuffer``; see the module docstring."""

    def __init__(self, codecs: dict[int, Any], sink: FrameSink) -> None:
        self._codecs = codecs
        self._sink = sink
        self._assemblers: dict[int, AudioFrameAssembler | VideoFrameAssembler] = {}
        self._keyframe_wanted = False
        self._last_request = float("-inf")
        self.frames = 0

    def want_keyframe(self) -> None:
        self._keyframe_wanted = True

    def add(self, packet: Any) -> tuple[bool, None]:
        codec = self._codecs.get(packet.payload_type)
        if codec is None:
            return False, None
        kind, name = codec.mimeType.split("/", 1)
        assembler = self._assemblers.get(packet.payload_type)
        if assembler is None:
            assembler = VideoFrameAssembler(name) if kind == "video" else AudioFrameAssembler()
            self._assemblers[packet.payload_type] = assembler
        now = time.monotonic()
        frames, wants = assembler.add(packet, packet._data, now)
        for frame in frames:
            self.frames += 1
            try:
                self._sink(
                    EncodedFrame(kind, name, codec.clockRate, frame.timestamp, frame.data,
                                 frame.keyframe)
                )
            except Exception:
                logger.exception("frame sink failed")
        if kind != "video":
            return False, None
        self._keyframe_wanted = self._keyframe_wanted or wants
        if self._keyframe_wanted and now - self._last_request >= KEYFRAME_REQUEST_INTERVAL_S:
            self._keyframe_wanted = False
            self._last_request = now
            return True, None
        return False, None


class _RembPolicy:
    """Wraps the receiver's bitrate estimator so the REMB it sends follows ``policy``."""

    def __init__(self, estimator: Any, policy: Callable[[int], int]) -> None:
        self._estimator = estimator
        self._policy = policy

    def add(self, **kwargs: Any) -> tuple[int, list[int]] | None:
        result = self._estimator.add(**kwargs)
        if result is None:
            return None
        bitrate, ssrcs = result
        return self._policy(bitrate), ssrcs


def tap_encoded_frames(receiver: RTCRtpReceiver, sink: FrameSink) -> None:
    """Deliver the receiver's completed encoded frames to ``sink`` instead of its decoder.

    Call before the connection starts receiving (right after creating the transceiver).
    ``sink`` runs on the event loop inside the receiver's packet handler: keep it quick.
    """
    setattr(receiver, _JITTER_BUFFER, _FrameTap(getattr(receiver, _CODECS), sink))


def request_keyframe(receiver: RTCRtpReceiver) -> None:
    """Ask the remote sender for a keyframe (a PLI sent with the next incoming packet).

    Rate-limited to one PLI per ``KEYFRAME_REQUEST_INTERVAL_S``; a request inside the
    interval is kept and sent when it ends, so none is lost.
    """
    _tap_of(receiver).want_keyframe()


def frames_tapped(receiver: RTCRtpReceiver) -> int:
    return _tap_of(receiver).frames


def on_rtcp_feedback(
    sender: RTCRtpSender,
    on_keyframe_request: Callable[[], None],
    on_remb: Callable[[int], None] | None = None,
) -> None:
    """Call back on PLI/FIR and REMB (bits per second) the remote receiver sends to ``sender``."""
    original: Callable[[Any], Awaitable[None]] = getattr(sender, _SENDER_RTCP)

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                on_keyframe_request()
            elif packet.fmt == RTCP_PSFB_APP and on_remb is not None:
                try:
                    bitrate, _ = unpack_remb_fci(packet.fci)
                except ValueError:
                    pass
                else:
                    on_remb(bitrate)
        await original(packet)

    setattr(sender, _SENDER_RTCP, handle)


def set_remb_policy(receiver: RTCRtpReceiver, policy: Callable[[int], int]) -> None:
    """Make the REMB the receiver sends upstream ``policy(own estimate)``. No-op for audio."""
    estimator = getattr(receiver, _ESTIMATOR)
    if estimator is not None:
        setattr(receiver, _ESTIMATOR, _RembPolicy(estimator, policy))


def _tap_of(receiver: RTCRtpReceiver) -> _FrameTap:
    tap = getattr(receiver, _JITTER_BUFFER, None)
    if not isinstance(tap, _FrameTap):
        raise ValueError("receiver has no frame tap: call tap_encoded_frames() first")
    return tap


class _TransportStandIn:
    """Just enough of an ``RTCDtlsTransport`` for ``RTCRtpReceiver.__init__``."""

    state = "new"


def check_compatible(
    receiver_cls: type[Any] = RTCRtpReceiver, sender_cls: type[Any] = RTCRtpSender
) -> None:
    """Raise :class:`MediaInternalsChanged` naming every private name that is missing."""
    missing: list[str] = []
    try:
        receiver = receiver_cls("video", _TransportStandIn())
    except Exception as exc:
        raise MediaInternalsChanged([f"RTCRtpReceiver('video', transport) ({exc!r})"]) from exc
    jitter = getattr(receiver, _JITTER_BUFFER, None)
    if not callable(getattr(jitter, "add", None)):
        missing.append(f"RTCRtpReceiver.{_JITTER_BUFFER}.add")
    if not isinstance(getattr(receiver, _CODECS, None), dict):
        missing.append(f"RTCRtpReceiver.{_CODECS} (dict)")
    if not callable(getattr(getattr(receiver, _ESTIMATOR, None), "add", None)):
        missing.append(f"RTCRtpReceiver.{_ESTIMATOR}.add")
    handler = getattr(receiver_cls, "_handle_rtp_packet", None)
    if handler is None:
        missing.append("RTCRtpReceiver._handle_rtp_packet")
    else:
        try:
            source = inspect.getsource(handler)
        except (OSError, TypeError):
            logger.warning("aiortc sources unavailable; packet path not verified")
            source = "packet._data __jitter_buffer.add(packet) _send_rtcp_pli"
        for needle in ("packet._data", "__jitter_buffer.add(packet)", "_send_rtcp_pli"):
            if needle not in source:
                missing.append(f"RTCRtpReceiver._handle_rtp_packet uses {needle}")
    if not inspect.iscoroutinefunction(getattr(sender_cls, _SENDER_RTCP, None)):
        missing.append(f"RTCRtpSender.{_SENDER_RTCP} (coroutine)")
    missing += lean_send_missing()
    if missing:
        raise MediaInternalsChanged(missing)
    if not aiortc.__version__.startswith(TESTED_VERSIONS):
        logger.warning(
            "aiortc %s is outside the tested range %s; internals look compatible",
            aiortc.__version__, TESTED_VERSIONS,
        )


def _source_of(obj: Any) -> str | None:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return None


def _uses(obj: Any, name: str, needles: tuple[str, ...]) -> list[str]:
    """``name uses X`` for each needle missing from ``obj``'s source (none if the
    source is unavailable: installed without sources, nothing to verify)."""
    source = _source_of(obj)
    if source is None:
        logger.warning("%s: source unavailable; not verified", name)
        return []
    return [f"{name} uses {needle}" for needle in needles if needle not in source]


def lean_send_missing(
    sender_cls: type[Any] = RTCRtpSender,
    dtls_cls: type[Any] = RTCDtlsTransport,
    ice_cls: type[Any] = RTCIceTransport,
    connection_cls: type[Any] = aioice.Connection,
) -> list[str]:
    """The private names :mod:`media.lean_sender` and :mod:`media.rtp_wire` use that
    are missing or changed; empty when all are there."""
    missing: list[str] = []
    for name in ("send", "_retransmit"):
        if not inspect.iscoroutinefunction(getattr(sender_cls, name, None)):
            missing.append(f"RTCRtpSender.{name} (coroutine)")
    fields = tuple(f"self.{f.removeprefix('_RTCRtpSender')}" for f in SR_FIELDS)
    missing += _uses(getattr(sender_cls, "_run_rtcp", None), "RTCRtpSender._run_rtcp",
                     ("self._ssrc", *fields))
    missing += _uses(getattr(sender_cls, "_retransmit", None), "RTCRtpSender._retransmit",
                     ("self._rtx_ssrc", "wrap_rtx"))
    missing += _uses(getattr(dtls_cls, "_send_rtp", None), "RTCDtlsTransport._send_rtp",
                     ("self._tx_srtp.protect(",))
    missing += _uses(ice_cls, "RTCIceTransport", ("self._connection = gatherer._connection",))
    missing += _uses(getattr(connection_cls, "sendto", None), "aioice.Connection.sendto",
                     ("self._nominated.get(component)", "active_pair.protocol.send_data",
                      "active_pair.remote_addr"))
    missing += _uses(RTCPeerConnection, "RTCPeerConnection", ("transceiver.sender.send(",))
    if not inspect.iscoroutinefunction(getattr(dtls_cls, "_handle_rtp_data", None)):
        missing.append("RTCDtlsTransport._handle_rtp_data (coroutine)")
    missing += _uses(getattr(dtls_cls, "_recv_next", None), "RTCDtlsTransport._recv_next",
                     ("self._rx_srtp.unprotect(data)", "await self._handle_rtp_data(data"))
    missing += _uses(getattr(connection_cls, "data_received", None),
                     "aioice.Connection.data_received", ("self._queue.put_nowait",))
    missing += _uses(StunProtocol.datagram_received, "aioice StunProtocol.datagram_received",
                     ("self.receiver.data_received(",))
    try:
        vp8 = Vp8Encoder._packetize(bytes(3000), 1)
        h264 = H264Encoder._packetize(H264Encoder._split_bitstream(
            b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65" + bytes(3000)))
    except Exception as exc:
        missing.append(f"Vp8Encoder._packetize / H264Encoder._packetize ({exc!r})")
    else:
        if len(vp8) < 2 or len(h264) < 2 or not all(isinstance(p, bytes) for p in vp8 + h264):
            missing.append("Vp8Encoder._packetize / H264Encoder._packetize (list of bytes)")
    return missing
