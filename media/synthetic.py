"""Synthetic media for tests and benchmarks: encode once, replay as encoded packets.

A client peer that replays pre-encoded packets costs almost no CPU, so a benchmark
measures the server and not the clients, and a test knows the exact bytes it sent.
The picture carries its frame number in 16 big black/white blocks, readable back
after lossy coding with :func:`read_frame_number`.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000
BITS = 16
_ENCODERS = {"VP8": "libvpx", "H264": "libx264"}


@dataclass(frozen=True, slots=True)
class EncodedClip:
    """Encoded frames in order; ``frames[0]`` is the only keyframe of a video clip."""

    kind: str
    codec: str
    frames: tuple[bytes, ...]
    clock_rate: int
    ticks_per_frame: int
    frame_duration: float


def pattern(number: int, width: int, height: int) -> npt.NDArray[np.uint8]:
    """A BGR test image: a gradient, and ``number`` as 16 blocks along the top half."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    image[..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    image[..., 2] = (number * 7) % 256
    block = width // BITS
    for bit in range(BITS):
        value = 255 if number >> bit & 1 else 0
        image[: height // 2, bit * block : (bit + 1) * block] = value
    return image


def read_frame_number(image: npt.NDArray[np.uint8]) -> int:
    height, width = image.shape[:2]
    block = width // BITS
    number = 0
    for bit in range(BITS):
        left, right = bit * block + block // 4, (bit + 1) * block - block // 4
        cell = image[height // 8 : 3 * height // 8, left:right]
        if float(cell.mean()) > 127:
            number |= 1 << bit
    return number


def encode_video(codec: str, count: int, width: int = 320, height: int = 240,
                 fps: int = 30) -> EncodedClip:
    """``count`` frames of :func:`pattern`, one keyframe first, then only delta frames."""
    context: Any = av.CodecContext.create(_ENCODERS[codec], "w")
    context.width, context.height, context.pix_fmt = width, height, "yuv420p"
    context.time_base = fractions.Fraction(1, fps)
    context.framerate = fractions.Fraction(fps, 1)
    context.bit_rate = 600_000
    context.gop_size = 100_000
    if codec == "VP8":
        context.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    else:
        context.profile = "Baseline"
        context.options = {"preset": "ultrafast", "tune": "zerolatency",
                           "x264-params": "keyint=100000:scenecut=0:repeat-headers=1"}
    frames: list[bytes] = []
    for number in range(count):
        frame = av.VideoFrame.from_ndarray(pattern(number, width, height), format="bgr24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = number
        frames.extend(bytes(packet) for packet in context.encode(frame))
    frames.extend(bytes(packet) for packet in context.encode(None))
    return EncodedClip("video", codec, tuple(frames), VIDEO_CLOCK, VIDEO_CLOCK // fps, 1 / fps)


def encode_audio(seconds: float = 1.0, tone_hz: float = 440.0) -> EncodedClip:
    """Opus, 20 ms frames of a tone."""
    context: Any = av.CodecContext.create("libopus", "w")
    context.sample_rate, context.layout, context.format = AUDIO_CLOCK, "stereo", "s16"
    context.bit_rate = 32_000
    samples = 960
    frames: list[bytes] = []
    for index in range(int(seconds * 50)):
        t = (np.arange(samples) + index * samples) / AUDIO_CLOCK
        wave = (np.sin(2 * math.pi * tone_hz * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(wave, 2)[None, :], format="s16",
                                           layout="stereo")
        frame.sample_rate = AUDIO_CLOCK
        frame.pts = index * samples
        frames.extend(bytes(packet) for packet in context.encode(frame))
    return EncodedClip("audio", "opus", tuple(frames), AUDIO_CLOCK, samples, 0.02)


class ReplayTrack(MediaStreamTrack):
    """Plays an :class:`EncodedClip` in real time as ``av.Packet`` objects.

    Like a browser camera it sends no periodic keyframe: after the last frame it goes on
    from frame 1 (the picture is wrong but the bytes are known). :meth:`request_keyframe`
    restarts at frame 0, the keyframe. ``sent`` keeps what went out, for comparisons.
    """

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self.sent: list[bytes] = []
        self.keyframes_requested = 0
        self._index = 0
        self._count = 0
        self._start: float | None = None

    def request_keyframe(self) -> None:
        self.keyframes_requested += 1
        self._index = 0

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self._count * self.clip.frame_duration - now
        if wait > 0:
            await asyncio.sleep(wait)
        data = self.clip.frames[self._index]
        self._index = self._index + 1 if self._index + 1 < len(self.clip.frames) else 1
        packet = av.Packet(data)
        packet.pts = self._count * self.clip.ticks_per_frame
        packet.time_base = fractions.Fraction(1, self.clip.clock_rate)
        self._count += 1
        self.sent.append(data)
        return packet
