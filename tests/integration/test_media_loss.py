"""Pass-through under 2 % packet loss on both legs, with real aiortc peers.

Some lost packets also lose every retransmission, so a receiver's frame waits for a
packet that never comes: before the frame assembler's stall timeout this stopped one
direction for seconds. Now the stuck frame is dropped, a keyframe is requested
upstream, and video keeps flowing; nothing undecodable is forwarded on the way.
"""

from __future__ import annotations

import asyncio
import itertools

from media.endpoint import LocalMediaEndpoint
from tests.integration.lossy_network import RtpLoss
from tests.integration.test_media_relay import clip, join

RUN_S = 8.0
POLL_S = 0.1


def follows(previous: int, current: int, length: int) -> bool:
    """``current`` decodes after ``previous``: the next clip frame, or a fresh keyframe
    (index 0). ReplayTrack continues from frame 1 after the last frame."""
    return current == 0 or current == (previous + 1 if previous + 1 < length else 1)


async def test_video_keeps_flowing_under_two_percent_loss_on_both_legs(
    endpoint: LocalMediaEndpoint,
) -> None:
    upstream = RtpLoss(0.02, seed=4, stubborn=3)
    downstream = RtpLoss(0.02, seed=5, stubborn=3)
    citizen = await join(endpoint, "lossy", "citizen")
    upstream.install(citizen.pc)
    clerk = await join(endpoint, "lossy", "clerk")
    server_leg = endpoint.session("lossy").peer("clerk")  # type: ignore[union-attr]
    assert server_leg is not None
    downstream.install(server_leg.pc)
    try:
        await clerk.wait_for("video", lambda frames: len(frames) >= 1)
        sent_before = len(citizen.video.sent)
        received_before = len(clerk.received["video"])
        requests_before = citizen.video.keyframes_requested
        # A stall is counted in frames the citizen sent meanwhile, not in seconds, so a
        # slow machine (which also sends slower) does not read as a stall.
        longest_gap = 0
        count, sent_at_delivery = received_before, sent_before
        for _ in range(int(RUN_S / POLL_S)):
            await asyncio.sleep(POLL_S)
            now, sent_now = len(clerk.received["video"]), len(citizen.video.sent)
            if now > count:
                sent_at_delivery = sent_now
            longest_gap, count = max(longest_gap, sent_now - sent_at_delivery), now

        assert upstream.retransmissions_dropped and downstream.retransmissions_dropped
        assert citizen.video.keyframes_requested > requests_before
        sent = len(citizen.video.sent) - sent_before
        delivered = len(clerk.received["video"]) - received_before
        assert delivered >= sent // 2, f"{delivered} of {sent} frames delivered"
        assert longest_gap < 2 * 30, f"video stopped for {longest_gap} frames (30 fps)"

        frames = clip("VP8").frames
        index_of = {data: n for n, data in enumerate(frames)}
        indices = [index_of[frame.data] for frame in clerk.received["video"]]
        assert indices[0] == 0
        broken = [(a, b) for a, b in itertools.pairwise(indices)
                  if not follows(a, b, len(frames))]
        assert not broken, f"frames forwarded after a gap without a keyframe: {broken[:5]}"
    finally:
        await asyncio.gather(citizen.pc.close(), clerk.pc.close())
