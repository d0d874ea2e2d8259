"""The pass-through relay with real aiortc client peers on this machine's own addresses.

The citizen and clerk clients replay pre-encoded clips (known bytes) and tap their own
receivers for encoded frames, so the tests compare bytes sent with bytes received.
No timing assertions beyond generous upper bounds: timings belong in bench/.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from media.aiortc_internals import EncodedFrame, on_rtcp_feedback, tap_encoded_frames
from media.bitstream import annexb_nal_units
from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.relay import RelaySettings
from media.synthetic import EncodedClip, ReplayTrack, encode_audio, encode_video

BOUND_S = 5.0
CLIPS: dict[str, EncodedClip] = {}


def clip(codec: str) -> EncodedClip:
    if codec not in CLIPS:
        CLIPS[codec] = encode_audio(1.0) if codec == "opus" else encode_video(codec, 45)
    return CLIPS[codec]


def digest(codec: str, data: bytes) -> str:
    """H.264 is compared NAL unit by NAL unit: re-packetising may turn a 3-byte start
    code into a 4-byte one, which is not a change to the coded picture."""
    if codec == "H264":
        data = b"|".join(annexb_nal_units(data))
    return hashlib.sha256(data).hexdigest()


@dataclass
class Client:
    pc: RTCPeerConnection
    video: ReplayTrack
    audio: ReplayTrack
    received: dict[str, list[EncodedFrame]] = field(
        default_factory=lambda: {"audio": [], "video": []}
    )
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def sink(self, kind: str) -> Callable[[EncodedFrame], None]:
        def take(frame: EncodedFrame) -> None:
            self.received[kind].append(frame)
            self.arrived.set()

        return take

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def wait_for(self, kind: str, predicate: Callable[[list[EncodedFrame]], bool]) -> None:
        async def arrivals() -> None:
            while not predicate(self.received[kind]):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(arrivals(), BOUND_S)


def make_client(codec: str) -> Client:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    client = Client(pc, ReplayTrack(clip(codec)), ReplayTrack(clip("opus")))
    for track in (client.video, client.audio):
        transceiver = pc.addTransceiver(track, direction="sendrecv")
        if track.kind == "video":
            caps = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in caps if c.name in (codec, "rtx")])
        tap_encoded_frames(transceiver.receiver, client.sink(track.kind))
        on_rtcp_feedback(transceiver.sender, track.request_keyframe)
    return client


async def join(ep: LocalMediaEndpoint, session: str, role: str, codec: str = "VP8") -> Client:
    client = make_client(codec)
    await client.accept(await ep.answer(session, role, await client.offer()))
    return client


def sent_digests(track: ReplayTrack) -> set[str]:
    return {digest(track.clip.codec, data) for data in track.sent}


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_encoded_frames_arrive_bit_identical_and_audio_flows_both_ways(
    endpoint: LocalMediaEndpoint, codec: str
) -> None:
    citizen = await join(endpoint, "s1", "citizen", codec)
    clerk = await join(endpoint, "s1", "clerk", codec)
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 20)
        await clerk.wait_for("audio", lambda frames: len(frames) >= 20)
        await citizen.wait_for("audio", lambda frames: len(frames) >= 20)

        video = clerk.received["video"]
        assert video[0].keyframe and video[0].codec == codec
        assert {digest(codec, f.data) for f in video} <= sent_digests(citizen.video)
        assert [f.data for f in clerk.received["audio"]] == citizen.audio.sent[
            citizen.audio.sent.index(clerk.received["audio"][0].data) :
        ][: len(clerk.received["audio"])]
        assert {f.data for f in citizen.received["audio"]} <= set(clerk.audio.sent)
        assert endpoint.session("s1") is not None
        assert endpoint.session("s1").codecs == {"audio": "opus", "video": codec}  # type: ignore[union-attr]
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(int(BOUND_S / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def decodes(codec: str, frames: list[EncodedFrame]) -> bool:
    decoder = av.CodecContext.create("libvpx" if codec == "VP8" else "h264", "r")
    for frame in frames[:3]:
        try:
            if decoder.decode(av.Packet(frame.data)):
                return True
        except av.FFmpegError:
            return False
    return False


async def test_late_and_reconnecting_receiver_gets_a_keyframe(
    endpoint: LocalMediaEndpoint,
) -> None:
    citizen = await join(endpoint, "s2", "citizen")
    clerk = second = None
    try:
        await asyncio.sleep(1.5)  # the citizen's only natural keyframe is long gone
        clerk = await join(endpoint, "s2", "clerk")
        await clerk.wait_for("video", lambda frames: decodes("VP8", frames))
        assert clerk.received["video"][0].keyframe
        assert citizen.video.keyframes_requested >= 1

        await clerk.pc.close()
        await eventually(lambda: endpoint.session("s2").peer("clerk") is None)  # type: ignore[union-attr]
        requests_before = citizen.video.keyframes_requested
        second = await join(endpoint, "s2", "clerk")
        await second.wait_for("video", lambda frames: decodes("VP8", frames))
        assert citizen.video.keyframes_requested > requests_before
    finally:
        for client in (citizen, clerk, second):
            if client is not None:
                await client.pc.close()


async def test_sides_without_a_common_codec_fail_with_its_code(
    endpoint: LocalMediaEndpoint,
) -> None:
    citizen = await join(endpoint, "s3", "citizen", "VP8")
    clerk = make_client("H264")
    try:
        with pytest.raises(MediaError) as caught:
            await endpoint.answer("s3", "clerk", await clerk.offer())
        assert caught.value.code == "no_common_codec"
        assert caught.value.detail["offered"] == ["H264"]
        assert endpoint.session("s3").peer("clerk") is None  # type: ignore[union-attr]
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())


def strip_fingerprints(sdp: str) -> str:
    return "".join(line for line in sdp.splitlines(True) if not line.startswith("a=fingerprint:"))


def add_crypto(sdp: str) -> str:
    crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40 + "\r\n"
    return re.sub(r"(m=(audio|video)[^\r\n]*\r\n)", lambda m: m.group(1) + crypto, sdp)


def tamper_fingerprint(sdp: str) -> str:
    def flip(match: re.Match[str]) -> str:
        head, first = match.group(1), match.group(2)
        return head + ("0" if first != "0" else "1")

    return re.sub(r"(a=fingerprint:sha-256 )([0-9A-F])", flip, sdp)


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda sdp: "v=0\r\nthis is not sdp\r\nm=video x\r\n", "invalid_sdp"),
        (lambda sdp: "", "invalid_sdp"),
        (lambda sdp: add_crypto(strip_fingerprints(sdp)), "sdes_not_supported"),
        (strip_fingerprints, "dtls_fingerprint_missing"),
    ],
)
async def test_bad_offers_are_refused_with_a_code(
    endpoint: LocalMediaEndpoint, mangle: Callable[[str], str], code: str
) -> None:
    client = make_client("VP8")
    offer = await client.offer()
    await client.pc.close()
    baseline = len(asyncio.all_tasks())
    with pytest.raises(MediaError) as caught:
        await endpoint.answer("s4", "citizen", mangle(offer))
    assert caught.value.code == code
    assert endpoint.session("s4").peer("citizen") is None  # type: ignore[union-attr]
    assert len(asyncio.all_tasks()) <= baseline


async def test_tampered_fingerprint_fails_the_leg_and_cleans_up() -> None:
    failures: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()

    async def on_failure(session: str, role: str, error: MediaError) -> None:
        await failures.put((session, role, error.code))

    ep = LocalMediaEndpoint(on_failure=on_failure)
    client = make_client("VP8")
    try:
        offer = tamper_fingerprint(await client.offer())
        await client.accept(await ep.answer("s5", "citizen", offer))
        assert await asyncio.wait_for(failures.get(), BOUND_S) == ("s5", "citizen", "dtls_failed")
        assert ep.session("s5").peer("citizen") is None  # type: ignore[union-attr]
        assert client.received["video"] == []
    finally:
        await client.pc.close()
        await ep.close()


async def test_twenty_sessions_leave_no_tasks_behind(endpoint: LocalMediaEndpoint) -> None:
    clip("VP8"), clip("opus")
    baseline = asyncio.all_tasks()
    threads = threading.active_count()
    for number in range(20):
        session = f"leak-{number}"
        citizen = await join(endpoint, session, "citizen")
        clerk = await join(endpoint, session, "clerk")
        await clerk.wait_for("video", lambda frames: len(frames) >= 1)
        await endpoint.end(session)
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())

    finishing = asyncio.all_tasks() - baseline
    if finishing:
        await asyncio.wait(finishing, timeout=BOUND_S)
    leaked = asyncio.all_tasks() - baseline
    assert not leaked, f"{len(leaked)} tasks leaked, e.g. {list(leaked)[:3]}"
    assert threading.active_count() <= threads  # receivers' (idle) decoder threads


async def test_a_full_process_refuses_new_sessions_but_not_its_own() -> None:
    ep = LocalMediaEndpoint(RelaySettings(max_sessions=1))
    clients = [await join(ep, "full-1", "citizen")]
    try:
        newcomer = make_client("VP8")
        clients.append(newcomer)
        with pytest.raises(MediaError) as caught:
            await ep.answer("full-2", "citizen", await newcomer.offer())
        assert caught.value.code == "media_busy" and caught.value.status == 503
        assert ep.session("full-2") is None
        clients.append(await join(ep, "full-1", "clerk"))  # the running session goes on
        await clients[-1].wait_for("video", lambda frames: len(frames) >= 1)
        await ep.end("full-1")
        clients.append(await join(ep, "full-2", "citizen"))
    finally:
        await asyncio.gather(*(client.pc.close() for client in clients))
        await ep.close()
