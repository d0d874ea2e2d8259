"""A lossy network between real aiortc peers, for tests: outgoing RTP dropped before SRTP.

The drop happens in the sending peer's ``RTCDtlsTransport._send_rtp`` (a private
aiortc name, used here only: a test boundary, like a netem qdisc that cannot be set on
a shared machine). RTCP is never dropped, so NACKs and PLIs get through. Losses are
seeded random; in addition the first ``stubborn`` lost video packets lose every
retransmission too (RTX), which is the case that stalled aiortc's jitter buffer: a
receiver then waits for a packet that never comes.

The relay's lean senders (media/lean_sender.py) do not go through ``_send_rtp``: on
them the drop happens in their wire, before SRTP too (``protect`` answers an empty
datagram for a dropped packet and ``sendto`` leaves it out).
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket, is_rtcp

from media.lean_sender import LeanSender
from media.rtp_wire import RtpWire

SEND_RTP = "_send_rtp"


def payload_types(sdp: str, codec: str) -> set[int]:
    return {int(pt) for pt in re.findall(rf"a=rtpmap:(\d+) {codec}/", sdp)}


class RtpLoss:
    def __init__(self, rate: float, *, seed: int, stubborn: int = 0) -> None:
        self.rate = rate
        self.stubborn = stubborn
        self.dropped = 0
        self.retransmissions_dropped = 0
        self._random = random.Random(seed)
        self._video: set[int] = set()
        self._rtx: set[int] = set()
        self._lost_for_good: set[int] = set()

    def install(self, pc: RTCPeerConnection) -> None:
        """Drop on ``pc``'s (bundled) transport; call once it has its remote description."""
        sdp = pc.localDescription.sdp
        self._video = payload_types(sdp, "VP8") | payload_types(sdp, "H264")
        self._rtx = payload_types(sdp, "rtx")
        transports = {id(s.transport): s.transport for s in pc.getSenders() if s.transport}
        for transport in transports.values():
            original: Callable[[bytes], Awaitable[None]] = getattr(transport, SEND_RTP)

            async def send(data: bytes, original: Any = original) -> None:
                if is_rtcp(data) or not self._drops(RtpPacket.parse(data)):
                    await original(data)

            setattr(transport, SEND_RTP, send)
        for sender in pc.getSenders():
            lean = getattr(sender.send, "__self__", None)
            if isinstance(lean, LeanSender):
                self._install_lean(sender, lean)

    def _install_lean(self, sender: Any, lean: LeanSender) -> None:
        if lean.wire is not None:
            self._wrap(lean.wire)
            return
        send = sender.send

        async def started(parameters: Any) -> None:
            await send(parameters)
            if lean.wire is not None:
                self._wrap(lean.wire)

        sender.send = started

    def _wrap(self, wire: RtpWire) -> None:
        protect, sendto = wire.protect, wire.sendto

        def lossy_protect(plain: bytes) -> bytes:
            return b"" if self._drops(RtpPacket.parse(plain)) else protect(plain)

        def lossy_sendto(data: bytes, address: tuple[str, int]) -> None:
            if data:
                sendto(data, address)

        wire.protect, wire.sendto = lossy_protect, lossy_sendto

    def _drops(self, packet: RtpPacket) -> bool:
        if packet.payload_type in self._rtx and len(packet.payload) >= 2:
            original_seq = int.from_bytes(packet.payload[:2], "big")
            if original_seq in self._lost_for_good:
                self.retransmissions_dropped += 1
                return True
        if self._random.random() >= self.rate:
            return False
        self.dropped += 1
        if packet.payload_type in self._video and len(self._lost_for_good) < self.stubborn:
            self._lost_for_good.add(packet.sequence_number)
        return True
