"""The relay's lean forwarding legs (media/lean_sender.py, media/lean_receive.py) with
real aiortc client peers.

Each test first checks that the leg in question really sends the lean way (or, for the
fallbacks, really does not), then what aiortc's sender used to guarantee: RTX answers a
NACK, sender reports count the stream, the RTP timeline continues when the upstream
participant reconnects, and the clerk gets the citizen's frames bit-identical.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtp import RtpPacket, is_rtcp

from media.aiortc_internals import EncodedFrame, lean_send_missing, tap_encoded_frames
from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.forwarding import BitratePolicy, ForwardedTrack, Source
from media.lean_receive import run_now
from media.lean_sender import LeanSender
from media.offer import parse_offer
from media.peers import ParticipantPeer
from media.relay import RelaySettings
from tests.integration.helpers import contiguous_run
from tests.integration.test_media_relay import (
    BOUND_S,
    Client,
    digest,
    join,
    sent_digests,
)

TS_MOD = 1 << 32


def clerk_leg(endpoint: LocalMediaEndpoint, session: str) -> ParticipantPeer:
    relay = endpoint.session(session)
    assert relay is not None
    leg = relay.peer("clerk")
    assert leg is not None
    return leg


def lean_of(leg: ParticipantPeer, kind: str) -> LeanSender:
    (lean,) = [lean for lean in leg.lean_senders if lean.track.kind == kind]
    return lean


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(int(BOUND_S / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition()


async def close(*clients: Client) -> None:
    await asyncio.gather(*(client.pc.close() for client in clients))


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_both_kinds_go_out_lean_and_arrive_bit_identical(
    endpoint: LocalMediaEndpoint, codec: str
) -> None:
    citizen = await join(endpoint, "l1", "citizen", codec)
    clerk = await join(endpoint, "l1", "clerk", codec)
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 30)
        await clerk.wait_for("audio", lambda frames: len(frames) >= 30)
        leg = clerk_leg(endpoint, "l1")
        video, audio = lean_of(leg, "video"), lean_of(leg, "audio")
        assert video.active and video.codec == f"video/{codec}"
        assert audio.active and audio.codec == "audio/opus"
        received = clerk.received["video"]
        assert received[0].keyframe
        assert {digest(codec, f.data) for f in received} <= sent_digests(citizen.video)
        assert contiguous_run(citizen.audio.sent, [f.data for f in clerk.received["audio"]])
        assert video.packets >= len(received) and video.track.forwarded >= len(received)
    finally:
        await close(citizen, clerk)


def drop_first_transmissions(lean: LeanSender, every: int, count: int) -> list[int]:
    """Lose the first transmission of every ``every``-th media packet, ``count`` times;
    RTX (another payload type) always gets through. Returns the lost sequence numbers."""
    wire = lean.wire
    assert wire is not None
    media_type = wire.header[1] & 0x7F
    protect, sendto = wire.protect, wire.sendto
    lost: list[int] = []
    seen = [0]

    def lossy_protect(plain: bytes) -> bytes:
        packet = RtpPacket.parse(plain)
        if packet.payload_type == media_type and len(lost) < count:
            seen[0] += 1
            if seen[0] % every == 0 and packet.sequence_number not in lost:
                lost.append(packet.sequence_number)
                return b""
        return protect(plain)

    def lossy_sendto(data: bytes, address: tuple[str, int]) -> None:
        if data:
            sendto(data, address)

    wire.protect, wire.sendto = lossy_protect, lossy_sendto
    return lost


async def test_packets_lost_on_the_lean_leg_are_resent_as_rtx_on_nack(
    endpoint: LocalMediaEndpoint,
) -> None:
    citizen = await join(endpoint, "l2", "citizen")
    clerk = await join(endpoint, "l2", "clerk")
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 3)
        lean = lean_of(clerk_leg(endpoint, "l2"), "video")
        requests_before = citizen.video.keyframes_requested
        lost = drop_first_transmissions(lean, every=5, count=8)
        start = len(clerk.received["video"])
        await eventually(lambda: len(lost) == 8)
        await clerk.wait_for("video", lambda frames: len(frames) >= start + 40)

        got = [f.data for f in clerk.received["video"][start:]]
        assert contiguous_run(citizen.video.sent, got), "a frame went missing"
        assert lean.retransmitted >= len(lost)
        assert citizen.video.keyframes_requested == requests_before
    finally:
        await close(citizen, clerk)


async def test_rtcp_stays_aiortcs_sender_reports_count_the_lean_stream(
    endpoint: LocalMediaEndpoint,
) -> None:
    """Sender reports carry the lean counts; the clerk's REMB and PLI still reach the
    track (PLI: the citizen is asked for a keyframe)."""
    citizen = await join(endpoint, "l3", "citizen")
    clerk = await join(endpoint, "l3", "clerk")
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 30)
        lean = lean_of(clerk_leg(endpoint, "l3"), "video")
        assert lean.active
        receiver = next(t.receiver for t in clerk.pc.getTransceivers() if t.kind == "video")

        async def sender_report() -> dict[str, int]:
            while True:
                for stats in (await receiver.getStats()).values():
                    if stats.type == "remote-outbound-rtp" and stats.packetsSent > 0:
                        return {"packets": stats.packetsSent, "bytes": stats.bytesSent}
                await asyncio.sleep(0.1)

        report = await asyncio.wait_for(sender_report(), BOUND_S)
        assert 0 < report["packets"] <= lean.packets
        assert 0 < report["bytes"] <= lean.octets
        assert 100 < report["bytes"] / report["packets"] <= 1300
        outbound = [s for s in (await lean.sender.getStats()).values()
                    if s.type == "outbound-rtp"]
        assert outbound[0].packetsSent == lean.packets
        assert outbound[0].bytesSent == lean.octets

        await eventually(lambda: lean.track.remb > 0)
        requests = citizen.video.keyframes_requested
        await receiver._send_rtcp_pli(lean.sender._ssrc)
        await eventually(lambda: citizen.video.keyframes_requested > requests)
    finally:
        await close(citizen, clerk)


def steps(frames: list[EncodedFrame]) -> list[int]:
    return [(b.timestamp - a.timestamp) % TS_MOD for a, b in itertools.pairwise(frames)]


async def test_timestamps_continue_across_the_citizens_reconnect(
    endpoint: LocalMediaEndpoint,
) -> None:
    first = await join(endpoint, "l4", "citizen")
    clerk = await join(endpoint, "l4", "clerk")
    second: Client | None = None
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 15)
        await clerk.wait_for("audio", lambda frames: len(frames) >= 15)
        await first.pc.close()
        before = {kind: len(clerk.received[kind]) for kind in ("video", "audio")}
        second = await join(endpoint, "l4", "citizen")
        await clerk.wait_for("video", lambda frames: len(frames) >= before["video"] + 15)
        await clerk.wait_for("audio", lambda frames: len(frames) >= before["audio"] + 15)

        leg = clerk_leg(endpoint, "l4")
        assert lean_of(leg, "video").active and lean_of(leg, "audio").active
        new_video = {f.data for f in clerk.received["video"][before["video"]:]}
        assert new_video <= set(second.video.sent)
        # aiortc's RTP timestamp origins are random per connection: unrebased, the
        # step across the reconnect would be anywhere in 2**32.
        assert all(0 < step <= 90_000 for step in steps(clerk.received["video"]))
        assert all(0 < step <= 48_000 for step in steps(clerk.received["audio"]))
    finally:
        await close(clerk, *([second] if second else []))


async def test_with_lean_send_off_aiortcs_sender_forwards() -> None:
    endpoint = LocalMediaEndpoint(RelaySettings(lean_send=False))
    citizen = await join(endpoint, "l5", "citizen")
    clerk = await join(endpoint, "l5", "clerk")
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 20)
        leg = clerk_leg(endpoint, "l5")
        assert leg.lean_senders == []
        for sender in leg.pc.getSenders():
            assert "send" not in vars(sender) and "_retransmit" not in vars(sender)
            assert isinstance(sender.track, ForwardedTrack) and sender.track.forwarded > 0
        received = clerk.received["video"]
        assert {digest("VP8", f.data) for f in received} <= sent_digests(citizen.video)
    finally:
        await close(citizen, clerk)
        await endpoint.close()


async def test_a_codec_without_a_lean_packetiser_keeps_aiortcs_sender() -> None:
    """PCMU, echoed: the leg forwards what it receives back to the same participant."""
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = client.addTransceiver(AudioStreamTrack(), direction="sendrecv")
    transceiver.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name == "PCMU"])
    echoed: list[EncodedFrame] = []
    tap_encoded_frames(transceiver.receiver, echoed.append)
    source = Source(("citizen", "audio", 0), BitratePolicy())

    async def ended(peer: ParticipantPeer, error: MediaError | None) -> None:
        return None

    leg = ParticipantPeer("citizen", RTCConfiguration(iceServers=[]), ended)
    try:
        await client.setLocalDescription(await client.createOffer())
        answer = await leg.answer(
            parse_offer(client.localDescription.sdp), {"audio": "PCMU"},
            outgoing=lambda kind, index: ForwardedTrack(source),
            on_incoming=lambda kind, index, receiver: source.attach(receiver),
        )
        await client.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await eventually(lambda: len(echoed) >= 20)

        (lean,) = leg.lean_senders
        assert lean.codec == "audio/PCMU" and not lean.active
        assert "_retransmit" not in vars(lean.sender)
        assert echoed[0].codec == "PCMU" and lean.track.forwarded >= 20
    finally:
        await asyncio.gather(client.close(), leg.close())


def test_a_changed_sender_is_reported_by_name() -> None:
    class RTCRtpSender:
        async def send(self, parameters: object) -> None:
            pass

    missing = lean_send_missing(sender_cls=RTCRtpSender)
    assert "RTCRtpSender._retransmit (coroutine)" in missing
    assert lean_send_missing() == []


def server_connection(leg: ParticipantPeer) -> Any:
    (transport,) = {id(t.receiver.transport): t.receiver.transport
                    for t in leg.pc.getTransceivers()}.values()
    return transport.transport._connection


async def test_incoming_rtp_is_handled_in_the_datagram_callback(
    endpoint: LocalMediaEndpoint,
) -> None:
    """media/lean_receive.py: RTP skips aioice's queue; DTLS and RTCP do not."""
    citizen = await join(endpoint, "l6", "citizen")
    clerk = await join(endpoint, "l6", "clerk")
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 30)
        relay = endpoint.session("l6")
        assert relay is not None
        citizen_leg = relay.peer("citizen")
        assert citizen_leg is not None
        connection = server_connection(citizen_leg)
        assert "data_received" in vars(connection)
        queued: list[bytes] = []
        original = connection._queue.put_nowait

        def spy(item: Any) -> None:
            if item is not None:
                queued.append(item[0])
            original(item)

        connection._queue.put_nowait = spy
        start = len(clerk.received["video"])
        await clerk.wait_for("video", lambda frames: len(frames) >= start + 30)
        assert queued, "RTCP (receiver reports) still goes through the queue"
        assert all(is_rtcp(data) or not 127 < data[0] < 192 for data in queued)
        received = clerk.received["video"][start:]
        assert {digest("VP8", f.data) for f in received} <= sent_digests(citizen.video)
    finally:
        await close(citizen, clerk)


async def test_with_lean_receive_off_rtp_goes_through_aioices_queue() -> None:
    endpoint = LocalMediaEndpoint(RelaySettings(lean_receive=False))
    citizen = await join(endpoint, "l7", "citizen")
    clerk = await join(endpoint, "l7", "clerk")
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 20)
        for leg in (clerk_leg(endpoint, "l7"),):
            assert "data_received" not in vars(server_connection(leg))
        assert lean_of(clerk_leg(endpoint, "l7"), "video").active
    finally:
        await close(citizen, clerk)
        await endpoint.close()


async def test_rtp_handling_that_waits_finishes_as_a_task() -> None:
    done = asyncio.Event()
    rests: set[asyncio.Task[None]] = set()

    async def handling() -> None:
        await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        done.set()

    run_now(handling(), rests)
    assert len(rests) == 1 and not done.is_set()
    await asyncio.wait_for(done.wait(), BOUND_S)
    await asyncio.sleep(0)
    assert not rests
