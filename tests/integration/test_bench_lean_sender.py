"""The relay bench's lean peers (bench/relay_lean.py) through the real relay.

A lean peer negotiates with aiortc and then writes pre-packetised RTP itself; these
tests check that what it sends is what a real aiortc sender would have delivered: the
clerk, a full aiortc peer behind the server's pass-through relay, receives the clip's
frames bit-identical and in order, starting at the keyframe the relay asked for, and a
lost packet is recovered by the lean sender's RTX answer to the relay's NACK. The
relay's own lean forwarding legs (media/lean_sender.py) relay bit-identical frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from bench.relay_clients import PacketCounter
from bench.relay_lean import (
    DormantTrack,
    IncomingTap,
    LeanStream,
    Pacer,
    check_internals,
    packetise,
)
from media.aiortc_internals import EncodedFrame, on_rtcp_feedback, tap_encoded_frames
from media.endpoint import LocalMediaEndpoint
from media.forwarding import ForwardedTrack
from media.synthetic import EncodedClip, ReplayTrack, encode_audio, encode_video
from tests.integration.helpers import contiguous_run

BOUND_S = 10.0
VIDEO = encode_video("VP8", 45)
VGA = encode_video("VP8", 45, 640, 480)  # as the bench: 32-byte prefixes tell its frames apart
AUDIO = encode_audio(1.0)


@dataclass
class Peer:
    pc: RTCPeerConnection
    received: dict[str, list[EncodedFrame]] = field(
        default_factory=lambda: {"audio": [], "video": []})
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def sink(self, kind: str) -> Callable[[EncodedFrame], None]:
        def take(frame: EncodedFrame) -> None:
            self.received[kind].append(frame)
            self.arrived.set()

        return take

    async def join(self, endpoint: LocalMediaEndpoint, session: str, role: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await endpoint.answer(session, role, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def wait_for(self, kind: str, count: int) -> None:
        async def arrivals() -> None:
            while len(self.received[kind]) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(arrivals(), BOUND_S)


def vp8_only(pc: RTCPeerConnection, track: object) -> object:
    transceiver = pc.addTransceiver(track, direction="sendrecv")  # type: ignore[arg-type]
    if transceiver.kind == "video":
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.name in ("VP8", "rtx")])
    return transceiver


def lean_peer(
    pacer: Pacer, counters: dict[str, PacketCounter] | None = None,
    incoming: IncomingTap | None = None,
) -> tuple[Peer, dict[str, LeanStream]]:
    """A lean sender; it receives through aiortc (frame tap) or, given ``counters``,
    through the bench's lean incoming tap ``incoming``."""
    peer = Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    clips = {"video": packetise("video", list(VIDEO.frames), 90_000, VIDEO.frame_duration),
             "audio": packetise("audio", list(AUDIO.frames), 48_000, AUDIO.frame_duration)}
    streams = {}
    for kind in ("video", "audio"):
        transceiver: Any = vp8_only(peer.pc, DormantTrack(kind))
        streams[kind] = LeanStream(clips[kind], transceiver.sender, pacer, incoming)
        if counters is None:
            tap_encoded_frames(transceiver.receiver, peer.sink(kind))
        else:
            transceiver.receiver._handle_rtp_packet = counters[kind].handle
    return peer, streams


def full_peer(video: EncodedClip = VIDEO) -> Peer:
    peer = Peer(RTCPeerConnection(RTCConfiguration(iceServers=[])))
    for clip in (video, AUDIO):
        track = ReplayTrack(clip)
        transceiver = vp8_only(peer.pc, track)
        tap_encoded_frames(transceiver.receiver, peer.sink(clip.kind))  # type: ignore[attr-defined]
        on_rtcp_feedback(transceiver.sender, track.request_keyframe)  # type: ignore[attr-defined]
    return peer


def sent_in_order(clip: EncodedClip, stream: LeanStream, received: list[EncodedFrame]) -> bool:
    """Whether the received frames are, byte for byte, a run of what the stream sent."""
    sent = [clip.frames[index] for index, _ in stream.log]
    got = [frame.data for frame in received]
    return contiguous_run(sent, got)


@pytest.fixture
async def pacer() -> AsyncIterator[Pacer]:
    pacer = Pacer()
    yield pacer
    pacer.stop()


def test_the_aiortc_internals_it_uses_are_there() -> None:
    check_internals()


async def test_lean_frames_arrive_bit_identical_from_the_keyframe_on(
    endpoint: LocalMediaEndpoint, pacer: Pacer,
) -> None:
    citizen, streams = lean_peer(pacer)
    clerk = full_peer()
    try:
        await citizen.join(endpoint, "s1", "citizen")
        await asyncio.sleep(0.5)  # the lean stream's first keyframe is gone, unseen
        await clerk.join(endpoint, "s1", "clerk")
        await clerk.wait_for("video", 40)
        await clerk.wait_for("audio", 40)
        await citizen.wait_for("audio", 20)

        video = clerk.received["video"]
        assert video[0].data == VIDEO.frames[0]
        assert sent_in_order(VIDEO, streams["video"], video)
        assert streams["video"].keyframes_requested >= 1
        assert sent_in_order(AUDIO, streams["audio"], clerk.received["audio"])
        assert streams["video"].log[0][0] == 0
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())


async def test_a_lost_packet_is_resent_as_rtx_on_the_relays_nack(
    endpoint: LocalMediaEndpoint, pacer: Pacer,
) -> None:
    citizen, streams = lean_peer(pacer)
    clerk = full_peer()
    video = streams["video"]
    lost = range(10, 15)
    dropped = []
    try:
        await citizen.join(endpoint, "s2", "citizen")
        await clerk.join(endpoint, "s2", "clerk")
        await clerk.wait_for("video", 3)
        wire = video._wire
        assert wire is not None
        send = wire.sendto
        media_ssrc = video._sender._ssrc.to_bytes(4, "big")

        def lossy(data: bytes, address: tuple[str, int]) -> None:
            """Every first transmission of frames 10-14 is lost; RTX gets through."""
            if data[8:12] == media_ssrc and video.log[-1][0] in lost:
                dropped.append(data)
                return
            send(data, address)

        wire.sendto = lossy
        await clerk.wait_for("video", 60)

        received = clerk.received["video"]
        assert received[0].data == VIDEO.frames[0]
        assert sent_in_order(VIDEO, video, received)
        assert dropped and video.retransmitted >= 1
        assert {VIDEO.frames[index] for index in lost} <= {frame.data for frame in received}
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())


async def test_the_lean_incoming_tap_counts_and_identifies_every_frame(
    endpoint: LocalMediaEndpoint, pacer: Pacer,
) -> None:
    prefix_of = {data[:32]: n for n, data in enumerate(VGA.frames)}
    assert len(prefix_of) == len(VGA.frames)
    counters = {kind: PacketCounter(kind, prefix_of) for kind in ("video", "audio")}
    incoming = IncomingTap({kind: c.take_srtp for kind, c in counters.items()}, pacer)
    citizen, _ = lean_peer(pacer, counters, incoming)
    clerk = full_peer(VGA)
    clerk_video = clerk.pc.getTransceivers()[0].sender.track
    assert isinstance(clerk_video, ReplayTrack)
    try:
        await citizen.join(endpoint, "s3", "citizen")
        await clerk.join(endpoint, "s3", "clerk")
        for _ in range(int(BOUND_S / 0.1)):
            if counters["video"].count >= 40 and counters["audio"].count >= 40:
                break
            await asyncio.sleep(0.1)

        video = counters["video"]
        assert video.count >= 40 and video.unknown == 0
        sent = [VGA.frames.index(data) for data in clerk_video.sent]
        got = [index for index, _ in video.log]
        assert got[0] == 0
        assert contiguous_run(sent, got)
        assert video.packets == video.expected
        assert counters["audio"].packets == counters["audio"].expected >= 40
        assert incoming.failed == 0 and incoming.packets > video.packets // 2
        # the clear header is enough to count; a frame's first packet is decrypted
        assert video.count <= incoming.opened < incoming.packets
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())


async def test_the_relays_lean_forwarding_legs_relay_bit_identical_frames(
    endpoint: LocalMediaEndpoint,
) -> None:
    """media/lean_sender.py: the relay's own legs send like the lean client."""
    citizen, clerk = full_peer(), full_peer()
    citizen_video = citizen.pc.getTransceivers()[0].sender.track
    assert isinstance(citizen_video, ReplayTrack)
    try:
        await citizen.join(endpoint, "s4", "citizen")
        await asyncio.sleep(0.5)  # the citizen's keyframe is gone: the relay must ask again
        await clerk.join(endpoint, "s4", "clerk")
        await clerk.wait_for("video", 40)
        await clerk.wait_for("audio", 40)
        await citizen.wait_for("audio", 40)

        video = [frame.data for frame in clerk.received["video"]]
        assert video[0] == VIDEO.frames[0] and citizen_video.keyframes_requested >= 1
        sent = citizen_video.sent
        assert contiguous_run(sent, video)
        leg = endpoint.session("s4").peer("clerk")  # type: ignore[union-attr]
        assert leg is not None
        forwarded = [s.track for s in leg.pc.getSenders()]
        assert all(isinstance(t, ForwardedTrack) and t.forwarded >= 40 for t in forwarded)
        assert len(leg.lean_senders) == 2
        assert all(lean.active and lean.packets >= 40 for lean in leg.lean_senders)
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())
