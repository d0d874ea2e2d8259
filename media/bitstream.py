"""What pass-through needs to know about VP8 and H.264 bytes without decoding them.

A forwarding server must tell a keyframe from a delta frame (a receiver that joins or
lost data can only start at a keyframe) and must find where a frame starts after it
dropped packets. Both questions are answered from a few header bits; nothing here
touches a decoder.
"""

from __future__ import annotations

from collections.abc import Iterator

H264_NAL_IDR = 5
H264_NAL_SPS = 7
H264_NAL_AUD = 9
H264_NAL_STAP_A = 24
H264_NAL_FU_A = 28


def is_keyframe(codec: str, frame: bytes) -> bool:
    """Whether a complete depayloaded frame can be decoded on its own.

    VP8 (RFC 6386 9.1): bit 0 of the frame tag is 0 for a key frame. H.264: the access
    unit (Annex B, as aiortc depayloads it) holds an IDR slice. Audio frames are all
    independent.
    """
    if codec == "VP8":
        return bool(frame) and frame[0] & 0x01 == 0
    if codec == "H264":
        return any(nal and nal[0] & 0x1F == H264_NAL_IDR for nal in annexb_nal_units(frame))
    return True


def may_start_keyframe(codec: str, payload: bytes) -> bool:
    """Whether an RTP payload can be the first packet of a keyframe.

    Used only to resynchronise after packets were dropped, when the packet before is
    gone and the marker bit cannot tell where the next frame begins.
    """
    if not payload:
        return False
    if codec == "VP8":
        start_of_partition = payload[0] & 0x10
        partition_id = payload[0] & 0x07
        return bool(start_of_partition) and partition_id == 0
    if codec == "H264":
        nal_type = payload[0] & 0x1F
        if nal_type == H264_NAL_STAP_A:
            first = payload[3] & 0x1F if len(payload) > 3 else 0
            return first in (H264_NAL_SPS, H264_NAL_AUD, H264_NAL_IDR)
        if nal_type == H264_NAL_FU_A:
            starts = len(payload) > 1 and bool(payload[1] & 0x80)
            return starts and payload[1] & 0x1F == H264_NAL_IDR
        return nal_type in (H264_NAL_SPS, H264_NAL_AUD, H264_NAL_IDR)
    return True


def annexb_nal_units(stream: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B byte stream, without their 3- or 4-byte start codes."""
    starts: list[tuple[int, int]] = []
    i = stream.find(b"\x00\x00\x01")
    while i != -1:
        code_start = i - 1 if i > 0 and stream[i - 1] == 0 else i
        starts.append((code_start, i + 3))
        i = stream.find(b"\x00\x00\x01", i + 3)
    for n, (_, begin) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(stream)
        yield stream[begin:end]
