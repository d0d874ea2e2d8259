"""A snapshot from a live stream: a fresh keyframe, decoded once, as a BGR image."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from media.aiortc_internals import on_rtcp_feedback
from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.synthetic import ReplayTrack, encode_video, pattern, read_frame_number


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_a_snapshot_shows_a_fresh_keyframe_of_the_senders_picture(codec: str) -> None:
    endpoint = LocalMediaEndpoint()
    track = ReplayTrack(encode_video(codec, 30))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(track, direction="sendonly")
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in caps if c.name in (codec, "rtx")])
    on_rtcp_feedback(transceiver.sender, track.request_keyframe)
    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await endpoint.answer("snap", "citizen", pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for _ in range(50):  # until well past the stream's only natural keyframe
            if len(track.sent) >= 15:
                break
            await asyncio.sleep(0.1)

        image = await asyncio.wait_for(endpoint.snapshot("snap", "citizen"), 5.0)

        assert track.keyframes_requested >= 1
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8
        assert read_frame_number(image) == 0  # the replay restarts at its keyframe
        difference = np.abs(image.astype(int) - pattern(0, 320, 240).astype(int)).mean()
        assert difference < 12
        with pytest.raises(MediaError) as caught:
            await endpoint.snapshot("snap", "clerk")
        assert caught.value.code == "snapshot_failed"
    finally:
        await pc.close()
        await endpoint.close()
