"""A still image from a live stream on demand, without decoding the stream continuously.

The relay never decodes. For a snapshot it asks the sender for a keyframe (PLI), takes
the first keyframe that arrives and decodes that one frame with a fresh PyAV decoder
in a worker thread, so the event loop keeps forwarding meanwhile. A keyframe decodes
on its own; no earlier frame is needed.
"""

from __future__ import annotations

import asyncio
from typing import cast

import av
import numpy as np
import numpy.typing as npt
from av.video.codeccontext import VideoCodecContext

from media.aiortc_internals import EncodedFrame
from media.errors import MediaError
from media.forwarding import Source

_DECODERS = {"VP8": "libvpx", "H264": "h264"}


class SnapshotFailed(MediaError):
    code = "snapshot_failed"
    status = 503

    def __init__(self, reason: str) -> None:
        super().__init__("未能获取画面", f"no snapshot: {reason}", detail={"reason": reason})


async def next_keyframe(source: Source, within_s: float) -> EncodedFrame:
    """Request a keyframe from ``source``'s sender and wait for it."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[EncodedFrame] = loop.create_future()

    def take(frame: EncodedFrame) -> None:
        if frame.keyframe and not arrived.done():
            arrived.set_result(frame)

    source.listen(take)
    try:
        source.request_keyframe()
        return await asyncio.wait_for(arrived, within_s)
    except TimeoutError:
        raise SnapshotFailed(f"no keyframe from {source.key} within {within_s} s") from None
    finally:
        source.unlisten(take)


def decode_keyframe(frame: EncodedFrame) -> npt.NDArray[np.uint8]:
    """The keyframe as a BGR image (height x width x 3). CPU-bound: call off the loop."""
    decoder = cast(VideoCodecContext, av.CodecContext.create(_DECODERS[frame.codec], "r"))
    try:
        pictures = decoder.decode(av.Packet(frame.data)) or decoder.decode(None)
    except av.FFmpegError as exc:
        raise SnapshotFailed(f"{frame.codec} keyframe does not decode: {exc}") from exc
    if not pictures:
        raise SnapshotFailed(f"{frame.codec} keyframe gave no picture")
    return cast(npt.NDArray[np.uint8], pictures[0].to_ndarray(format="bgr24"))


async def snapshot(source: Source, within_s: float = 1.0) -> npt.NDArray[np.uint8]:
    if source.kind != "video":
        raise SnapshotFailed(f"{source.key} is not video")
    frame = await next_keyframe(source, within_s)
    return await asyncio.to_thread(decode_keyframe, frame)
