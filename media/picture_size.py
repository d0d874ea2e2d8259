"""Picture size from a keyframe's headers, without a decoder.

A Matroska/WebM video track header must state the picture size before the first frame
is written, and the recorder never decodes. The size is in the first bytes of a VP8
keyframe (RFC 6386 9.1) and in an H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1),
which the sender puts in front of every IDR picture.
"""

from __future__ import annotations

from media.bitstream import H264_NAL_SPS, annexb_nal_units

VP8_START_CODE = b"\x9d\x01\x2a"
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def picture_size(codec: str, keyframe: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a VP8 keyframe or an H.264 access unit holding an SPS."""
    if codec == "VP8":
        if len(keyframe) < 10 or keyframe[0] & 0x01 or keyframe[3:6] != VP8_START_CODE:
            return None
        width = int.from_bytes(keyframe[6:8], "little") & 0x3FFF
        height = int.from_bytes(keyframe[8:10], "little") & 0x3FFF
        return width, height
    if codec == "H264":
        for nal in annexb_nal_units(keyframe):
            if nal and nal[0] & 0x1F == H264_NAL_SPS:
                try:
                    return h264_sps_size(nal[1:])
                except IndexError:
                    return None
    return None


class _Bits:
    """Exp-Golomb reader over an RBSP (emulation prevention bytes already removed)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]
        value = byte >> (7 - (self._pos & 7)) & 1
        self._pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = value << 1 | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise IndexError("Exp-Golomb code too long")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def unescape_rbsp(payload: bytes) -> bytes:
    """Drop the emulation prevention byte of every ``00 00 03``."""
    return payload.replace(b"\x00\x00\x03", b"\x00\x00")


def h264_sps_size(payload: bytes) -> tuple[int, int]:
    """Cropped picture size from an SPS payload (the bytes after the NAL header)."""
    r = _Bits(unescape_rbsp(payload))
    profile_idc = r.bits(8)
    r.bits(16)  # constraint flags, level_idc
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_planes = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_planes = r.bit()
        r.ue(), r.ue()  # bit depths
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if index < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se(), r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        chroma_array_type = 0 if separate_planes else chroma_format_idc
        unit_x = 1 if chroma_array_type in (0, 3) else 2
        unit_y = (1 if chroma_array_type in (0, 2, 3) else 2) * (2 - frame_mbs_only)
        width -= unit_x * (left + right)
        height -= unit_y * (top + bottom)
    return width, height


def _skip_scaling_list(r: _Bits, size: int) -> None:
    last, next_ = 8, 8
    for _ in range(size):
        if next_ != 0:
            next_ = (last + r.se() + 256) % 256
        last = next_ if next_ != 0 else last
