"""A lossy network between real aiortc peers, for tests: outgoing RTP dropped before SRTP.

The drop happens in the sending peer's ``RTCDtlsTransport._send_rtp`` (a private
aiortc name, used here only: a test boundary, like a netem qdisc that cannot be set on
a shared machine). RTCP is never dropped, so NACKs and PLIs get through. Losses are
seeded random; in addition the first ``stubborn`` lost video packets lose every
retransmission too (RTX), which is the case that stalled aiortc's jitter buffer: a
receiver then waits for a packet that never comes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket, is_rtcp

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
