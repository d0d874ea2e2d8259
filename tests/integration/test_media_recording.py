"""Recording by remux with real aiortc peers: consent first, segments that decode alone.

The citizen plays a kiosk (face camera + document camera + microphone), the clerk one
camera and a microphone; both replay pre-encoded clips. The crash test runs the server
in a child process and kills it with SIGKILL, which is what a crash is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from media.aiortc_internals import on_rtcp_feedback
from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.recorder import RecordingSettings, Segment
from media.synthetic import EncodedClip, ReplayTrack, encode_audio, encode_video

ROOT = Path(__file__).resolve().parents[2]
BOUND_S = 10.0
CLIPS: dict[tuple[str, int], EncodedClip] = {}


def clip(codec: str, frames: int = 150) -> EncodedClip:
    """5 s clips: a keyframe request restarts them, so they rarely wrap around."""
    if (codec, frames) not in CLIPS:
        CLIPS[codec, frames] = encode_audio(3.0) if codec == "opus" else encode_video(
            codec, frames)
    return CLIPS[codec, frames]


class Peer:
    """A client peer connection sending ``cameras`` video tracks and one audio track."""

    def __init__(self, codec: str, cameras: int) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tracks = [ReplayTrack(clip(codec)) for _ in range(cameras)]
        self.tracks.append(ReplayTrack(clip("opus")))
        caps = [c for c in RTCRtpSender.getCapabilities("video").codecs
                if c.name in (codec, "rtx")]
        for track in self.tracks:
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            if track.kind == "video":
                transceiver.setCodecPreferences(caps)
            on_rtcp_feedback(transceiver.sender, track.request_keyframe)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


async def join(endpoint: LocalMediaEndpoint, session: str, role: str, codec: str,
               cameras: int) -> Peer:
    peer = Peer(codec, cameras)
    await peer.accept(await endpoint.answer(session, role, await peer.offer()))
    return peer


async def until_sending(*peers: Peer) -> None:
    for _ in range(int(BOUND_S / 0.05)):
        if all(len(t.sent) >= 10 for peer in peers for t in peer.tracks):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the peers did not start sending")


@pytest.fixture
async def recording_endpoint(tmp_path: Path) -> AsyncIterator[LocalMediaEndpoint]:
    endpoint = LocalMediaEndpoint(
        recording=RecordingSettings(tmp_path / "recordings", segment_s=1.5, handover_s=1.0)
    )
    yield endpoint
    await endpoint.close()


def decode_all(path: Path) -> tuple[dict[str, int], dict[str, str], float]:
    """Frames decoded per stream title, codec per title, container duration (s)."""
    counts: dict[str, int] = {}
    codecs: dict[str, str] = {}
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1_000_000
        for stream in container.streams:
            title = stream.metadata.get("title", str(stream.index))
            counts[title] = 0
            codecs[title] = stream.codec_context.name
            stream.codec_context.thread_count = 1
        for packet in container.demux():
            title = packet.stream.metadata.get("title", str(packet.stream.index))
            counts[title] += len(packet.decode())
    return counts, codecs, duration


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_nothing_is_recorded_before_start_and_start_needs_consent(
    recording_endpoint: LocalMediaEndpoint, tmp_path: Path
) -> None:
    citizen = await join(recording_endpoint, "c1", "citizen", "VP8", 2)
    clerk = await join(recording_endpoint, "c1", "clerk", "VP8", 1)
    try:
        await until_sending(citizen, clerk)
        await asyncio.sleep(0.5)
        assert not (tmp_path / "recordings").exists()
        with pytest.raises(TypeError):
            await recording_endpoint.start_recording("c1")  # type: ignore[call-arg]
        for consent in ("", "   "):
            with pytest.raises(MediaError) as caught:
                await recording_endpoint.start_recording("c1", consent_id=consent)
            assert caught.value.code == "recording_consent_required"
        assert not (tmp_path / "recordings").exists()
        assert await recording_endpoint.stop_recording("c1") == []
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())


@pytest.mark.parametrize(("codec", "suffix", "decoder"),
                         [("VP8", ".webm", "vp8"), ("H264", ".mkv", "h264")])
async def test_a_recording_holds_every_track_decodes_and_lasts_as_long_as_it_ran(
    tmp_path: Path, codec: str, suffix: str, decoder: str
) -> None:
    reported: list[Segment] = []
    endpoint = LocalMediaEndpoint(
        recording=RecordingSettings(tmp_path / "rec", segment_s=1.5, handover_s=1.0),
        on_segment=reported.append,
    )
    citizen = await join(endpoint, "c2", "citizen", codec, 2)
    clerk = await join(endpoint, "c2", "clerk", codec, 1)
    try:
        await until_sending(citizen, clerk)
        started = time.monotonic()
        await endpoint.start_recording("c2", consent_id="consent-42")
        await asyncio.sleep(5.0)
        segments = await endpoint.stop_recording("c2")
        elapsed = time.monotonic() - started
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())
        await endpoint.close()

    assert segments == reported
    assert [s.index for s in segments] == list(range(len(segments)))
    assert len(segments) >= 3, [s.duration_s for s in segments]
    expected_tracks = {"citizen-video-0", "citizen-video-1", "citizen-audio-0",
                       "clerk-video-0", "clerk-audio-0"}
    for segment in segments:
        assert segment.consent_id == "consent-42" and segment.session_id == "c2"
        assert segment.path.suffix == suffix and segment.path.exists()
        assert segment.size_bytes == segment.path.stat().st_size
        assert segment.sha256 == sha256(segment.path)
        assert set(segment.tracks) == expected_tracks
        counts, codecs, duration = decode_all(segment.path)
        assert set(counts) == expected_tracks
        assert {codecs[t] for t in expected_tracks if "video" in t} == {decoder}
        assert abs(duration - segment.duration_s) <= 0.05 + 0.05 * segment.duration_s
        for track, frames in counts.items():
            rate = 30 if "video" in track else 50
            assert frames >= 0.8 * rate * (segment.duration_s - 0.3), (segment.index, track)
    assert not list((tmp_path / "rec").rglob("*.part"))
    span = segments[-1].started_at + segments[-1].duration_s - segments[0].started_at
    assert abs(span - elapsed) <= 0.05 * elapsed, (span, elapsed)
    assert sum(s.duration_s for s in segments) == pytest.approx(span, rel=0.05)


SERVER = """
import asyncio, sys
from tests.integration.test_media_recording import serve
asyncio.run(serve(sys.argv[1]))
"""


async def serve(directory: str) -> None:
    """A media server in its own process: JSON lines in on stdin, out on stdout."""
    loop = asyncio.get_running_loop()

    def emit(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message, default=str) + "\n")
        sys.stdout.flush()

    endpoint = LocalMediaEndpoint(
        recording=RecordingSettings(Path(directory), segment_s=1.0, handover_s=1.0),
        on_segment=lambda segment: emit({"segment": asdict(segment)}),
    )
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        request = json.loads(line)
        if "offer" in request:
            answer = await endpoint.answer(request["session"], request["role"],
                                           request["offer"])
            emit({"answer": answer})
        elif "consent" in request:
            await endpoint.start_recording(request["session"], consent_id=request["consent"])
            emit({"recording": True})


async def test_a_crash_loses_only_the_segment_being_written(tmp_path: Path) -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, str(tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
    )
    assert server.stdin is not None and server.stdout is not None
    stdin, stdout = server.stdin, server.stdout

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        stdin.write((json.dumps(request) + "\n").encode())
        await stdin.drain()
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(stdout.readline(), BOUND_S))
        return reply

    peers: list[Peer] = []
    try:
        for role, cameras in (("citizen", 2), ("clerk", 1)):
            peer = Peer("VP8", cameras)
            peers.append(peer)
            reply = await call({"session": "c3", "role": role, "offer": await peer.offer()})
            await peer.accept(reply["answer"])
        await until_sending(*peers)
        assert await call({"session": "c3", "consent": "consent-7"}) == {"recording": True}
        segments = [json.loads(await asyncio.wait_for(stdout.readline(), BOUND_S))["segment"]
                    for _ in range(2)]
        await asyncio.sleep(0.5)  # well into the third segment
        server.send_signal(signal.SIGKILL)
        await asyncio.wait_for(server.wait(), BOUND_S)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
        await asyncio.gather(*(peer.pc.close() for peer in peers))

    check_survivors(tmp_path, segments)


def check_survivors(directory: Path, segments: list[dict[str, Any]]) -> None:
    """The segments reported before the crash are intact; the one being written is
    left as ``.part`` and was never reported."""
    for segment in segments:
        path = Path(segment["path"])
        assert sha256(path) == segment["sha256"]
        counts, _, duration = decode_all(path)
        assert len(counts) == 5 and min(counts.values()) > 0
        assert duration == pytest.approx(segment["duration_s"], abs=0.1)
    finished = sorted(p.name for p in directory.rglob("*.webm"))
    assert finished == sorted(Path(s["path"]).name for s in segments)
    assert [p.name for p in directory.rglob("*.part")] == ["c3-0002.webm.part"]
