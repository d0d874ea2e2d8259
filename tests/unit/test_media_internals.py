"""The aiortc private names the relay relies on: present, and behaving as assumed.

If aiortc changes underneath, these fail naming the internal, before any call does.
The transport is the one stand-in: a receiver needs nothing else to handle packets.
"""

from __future__ import annotations

import pytest
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    RtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from media import aiortc_internals
from media.aiortc_internals import (
    EncodedFrame,
    check_compatible,
    on_rtcp_feedback,
    request_keyframe,
    set_remb_policy,
    tap_encoded_frames,
)
from media.errors import MediaInternalsChanged
from media.synthetic import encode_video

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


class StandInTransport:
    state = "connected"

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)


def test_the_installed_aiortc_is_compatible() -> None:
    check_compatible()


def test_a_receiver_without_the_jitter_buffer_is_reported_by_name() -> None:
    class RTCRtpReceiver:  # same name, so the mangled names line up
        def __init__(self, kind: str, transport: object) -> None:
            self.__codecs: dict[int, object] = {}

        async def _handle_rtp_packet(self, packet: object, arrival_time_ms: int) -> None:
            """packet._data __jitter_buffer.add(packet) _send_rtcp_pli"""

    with pytest.raises(MediaInternalsChanged) as caught:
        check_compatible(receiver_cls=RTCRtpReceiver)
    assert caught.value.code == "media_internals_changed"
    assert "RTCRtpReceiver._RTCRtpReceiver__jitter_buffer.add" in caught.value.missing
    assert "RTCRtpReceiver._RTCRtpReceiver__remote_bitrate_estimator.add" in caught.value.missing
    assert "_RTCRtpReceiver__jitter_buffer" in str(caught.value)


def test_a_sender_without_the_rtcp_handler_is_reported_by_name() -> None:
    class Sender:
        pass

    with pytest.raises(MediaInternalsChanged) as caught:
        check_compatible(sender_cls=Sender)
    assert caught.value.missing == ["RTCRtpSender._handle_rtcp_packet (coroutine)"]


def vp8_packets(frames: list[bytes]) -> list[RtpPacket]:
    encoder, packets, seq = Vp8Encoder(), [], 1000
    for number, frame in enumerate(frames):
        payloads = encoder._packetize(frame, number)
        for i, payload in enumerate(payloads):
            packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=3000 * number)
            packet.ssrc, packet.payload, packet.marker = 1234, payload, int(i == len(payloads) - 1)
            packets.append(packet)
            seq += 1
    return packets


async def make_receiver() -> tuple[RTCRtpReceiver, StandInTransport]:
    transport = StandInTransport()
    receiver = RTCRtpReceiver("video", transport)  # type: ignore[arg-type]
    vars(receiver)["_RTCRtpReceiver__codecs"][96] = VP8
    receiver._set_rtcp_ssrc(42)
    return receiver, transport


async def test_the_tap_gets_every_frame_from_the_receivers_own_packet_path() -> None:
    clip = encode_video("VP8", 4)
    receiver, transport = await make_receiver()
    frames: list[EncodedFrame] = []
    tap_encoded_frames(receiver, frames.append)
    for packet in vp8_packets(list(clip.frames)):
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    assert [f.data for f in frames] == list(clip.frames)
    assert [f.keyframe for f in frames] == [True, False, False, False]
    assert {(f.kind, f.codec, f.clock_rate) for f in frames} == {("video", "VP8", 90000)}
    assert vars(receiver)["_RTCRtpReceiver__decoder_queue"].empty()
    assert aiortc_internals.frames_tapped(receiver) == 4
    assert transport.sent == []


async def test_a_keyframe_request_goes_out_as_a_pli_with_the_next_packet_rate_limited() -> None:
    receiver, transport = await make_receiver()
    tap_encoded_frames(receiver, lambda frame: None)
    packets = vp8_packets(list(encode_video("VP8", 3).frames))
    await receiver._handle_rtp_packet(packets[0], arrival_time_ms=0)
    request_keyframe(receiver)
    for packet in packets[1:]:
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
        request_keyframe(receiver)
    plis = [p for data in transport.sent for p in RtcpPacket.parse(data)
            if isinstance(p, RtcpPsfbPacket)]
    assert [(p.fmt, p.media_ssrc) for p in plis] == [(RTCP_PSFB_PLI, 1234)]


async def test_sender_feedback_reaches_the_callbacks_and_aiortc() -> None:
    sender = RTCRtpSender("video", StandInTransport())  # type: ignore[arg-type]
    requests: list[str] = []
    rembs: list[int] = []
    on_rtcp_feedback(sender, lambda: requests.append("pli"), rembs.append)
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=2))
    remb = RtcpPsfbPacket(fmt=15, ssrc=1, media_ssrc=0, fci=pack_remb_fci(250_000, [2]))
    await sender._handle_rtcp_packet(remb)
    assert requests == ["pli"] and rembs == [250_000]


class LowEstimate:
    """aiortc's estimator needs seconds of realistic traffic to speak; this one always does."""

    def add(self, **kwargs: int) -> tuple[int, list[int]]:
        return 300_000, [kwargs["ssrc"]]


async def test_the_remb_sent_upstream_follows_the_policy() -> None:
    receiver, transport = await make_receiver()
    vars(receiver)["_RTCRtpReceiver__remote_bitrate_estimator"] = LowEstimate()
    set_remb_policy(receiver, lambda estimate: max(estimate, 600_000))
    tap_encoded_frames(receiver, lambda frame: None)
    packet = vp8_packets(list(encode_video("VP8", 1).frames))[0]
    packet.extensions.abs_send_time = 1
    await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    rembs = [unpack_remb_fci(p.fci) for data in transport.sent for p in RtcpPacket.parse(data)
             if isinstance(p, RtcpPsfbPacket)]
    assert rembs == [(600_000, [1234])]


def test_request_keyframe_needs_a_tap() -> None:
    receiver = RTCRtpReceiver("video", StandInTransport())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tap_encoded_frames"):
        request_keyframe(receiver)


