"""Decoding one keyframe into a BGR image, without sockets."""

from __future__ import annotations

import numpy as np
import pytest

from media.aiortc_internals import EncodedFrame
from media.errors import MediaError
from media.snapshot import decode_keyframe
from media.synthetic import encode_video, pattern, read_frame_number


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_a_keyframe_decodes_to_its_pattern(codec: str) -> None:
    clip = encode_video(codec, 1, width=320, height=240)
    image = decode_keyframe(EncodedFrame("video", codec, 90000, 0, clip.frames[0], True))
    assert image.shape == (240, 320, 3)
    assert read_frame_number(image) == 0
    assert np.abs(image.astype(int) - pattern(0, 320, 240).astype(int)).mean() < 12


def test_bytes_that_are_no_picture_fail_with_a_code() -> None:
    with pytest.raises(MediaError) as caught:
        decode_keyframe(EncodedFrame("video", "H264", 90000, 0, b"\x00\x00\x01\x09", True))
    assert caught.value.code == "snapshot_failed"


def test_the_frame_number_survives_the_pattern() -> None:
    assert read_frame_number(pattern(0xBEEF, 320, 240)) == 0xBEEF
