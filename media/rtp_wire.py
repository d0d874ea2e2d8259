"""Sending RTP without aiortc's per-packet path: a header template, SRTP, ``sendto``.

aiortc's ``RTCRtpSender`` does per packet: an ``RtpPacket`` with header extensions,
serialisation, SRTP and three coroutine layers down to ``sendto``. For frames that are
already encoded (the relay's forwarded frames, the bench's pre-packetised clips) the
header of a negotiated stream is the same for every packet but for the marker bit, the
sequence number, the timestamp and abs-send-time. :func:`wire_for` builds it once from
the sender's negotiated parameters (payload type, SSRC, mid and abs-send-time
extensions, as aiortc writes them); :func:`send_frame` writes one frame's payloads
synchronously; :func:`retransmit` answers a NACK with RTX from a history, as aiortc
does. RTCP stays aiortc's: the caller writes the sender-report fields
(:data:`SR_FIELDS`) after each frame.

Private aiortc names used (aiortc 1.16): ``RTCRtpSender._ssrc``, ``_rtx_ssrc`` and the
sender-report fields, ``RTCDtlsTransport._tx_srtp``, ``RTCIceTransport._connection``,
``aioice.Connection._nominated``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensionsMap, RtpPacket, wrap_rtx

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
ABS_SEND_TIME_MAX = 0xFFFFFF
NTP_EPOCH_OFFSET_S = 2_208_988_800
SR_FIELDS = ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp",
             "_RTCRtpSender__packet_count", "_RTCRtpSender__octet_count")


@dataclass(slots=True)
class RtpWire:
    """The negotiated stream as the lean sender writes it."""

    header: bytearray
    abs_send_time_at: int | None
    protect: Callable[[bytes], bytes]
    sendto: Callable[[bytes, tuple[str, int]], None]
    address: tuple[str, int]
    extensions: HeaderExtensionsMap
    rtx_payload_type: int | None
    transport: Any
    nominated: dict[int, Any] | None = None
    pair: Any = None


def wire_for(sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> RtpWire:
    """The header template and send path of ``sender``'s negotiated stream."""
    codec = parameters.codecs[0]
    assert codec.payloadType is not None
    rtx = next((c.payloadType for c in parameters.codecs
                if c.mimeType.lower().endswith("/rtx")
                and c.parameters.get("apt") == codec.payloadType), None)
    extensions = HeaderExtensionsMap()
    extensions.configure(parameters)
    seed = RtpPacket(payload_type=codec.payloadType, ssrc=sender._ssrc)
    seed.extensions.mid = parameters.muxId
    seed.extensions.abs_send_time = 0
    low = seed.serialize(extensions)
    seed.extensions.abs_send_time = ABS_SEND_TIME_MAX
    high = seed.serialize(extensions)
    changed = [i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b]
    dtls = sender.transport
    nominated = dtls.transport._connection._nominated
    pair = nominated[1]
    return RtpWire(
        header=bytearray(low),
        abs_send_time_at=changed[0] if changed else None,
        protect=dtls._tx_srtp.protect,
        sendto=pair.protocol.transport.sendto,
        address=pair.remote_addr,
        extensions=extensions,
        rtx_payload_type=rtx,
        transport=dtls,
        nominated=nominated,
        pair=pair,
    )


def follow_pair(wire: RtpWire) -> None:
    """Send on the pair ICE uses now: the controlling agent (the browser) may nominate
    another pair after the first, which aioice then sends on."""
    if wire.nominated is None:
        return
    pair = wire.nominated.get(1)
    if pair is not None and pair is not wire.pair:
        wire.pair = pair
        wire.sendto = pair.protocol.transport.sendto
        wire.address = pair.remote_addr


def send_frame(wire: RtpWire, payloads: tuple[bytes, ...] | list[bytes], timestamp: int,
               seq: int, history: list[bytes | None]) -> tuple[int, int, int]:
    """Send one frame's payloads; returns (next sequence number, NTP time, octets)."""
    header = wire.header
    struct.pack_into("!I", header, 4, timestamp)
    ntp = int((time.time() + NTP_EPOCH_OFFSET_S) * (1 << 32))
    at = wire.abs_send_time_at
    if at is not None:
        header[at:at + 3] = ((ntp >> 14) & ABS_SEND_TIME_MAX).to_bytes(3, "big")
    last = len(payloads) - 1
    payload_type = header[1] & 0x7F
    protect, sendto, address = wire.protect, wire.sendto, wire.address
    octets = 0
    for n, payload in enumerate(payloads):
        struct.pack_into("!BH", header, 1, payload_type | (0x80 if n == last else 0), seq)
        plain = bytes(header) + payload
        history[seq % RTP_HISTORY_SIZE] = plain
        sendto(protect(plain), address)
        octets += len(payload)
        seq = (seq + 1) % SEQ_MOD
    return seq, ntp, octets


def retransmit(wire: RtpWire, history: list[bytes | None], sequence_number: int,
               rtx_seq: int, rtx_ssrc: int) -> int:
    """Send a NACKed packet from ``history`` again as RTX; returns the next RTX sequence
    number."""
    plain = history[sequence_number % RTP_HISTORY_SIZE]
    if plain is None or wire.rtx_payload_type is None:
        return rtx_seq
    packet = RtpPacket.parse(plain, wire.extensions)
    if packet.sequence_number != sequence_number:
        return rtx_seq
    rtx = wrap_rtx(packet, payload_type=wire.rtx_payload_type, sequence_number=rtx_seq,
                   ssrc=rtx_ssrc)
    wire.sendto(wire.protect(rtx.serialize(wire.extensions)), wire.address)
    return (rtx_seq + 1) % SEQ_MOD
