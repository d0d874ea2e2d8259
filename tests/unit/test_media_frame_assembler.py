"""Frame completion on the marker bit, loss and resynchronisation, without sockets."""

from __future__ import annotations

from dataclasses import dataclass

from media.bitstream import annexb_nal_units, is_keyframe, may_start_keyframe
from media.frame_assembler import (
    AssembledFrame,
    AudioFrameAssembler,
    SequenceUnwrapper,
    VideoFrameAssembler,
)

KEY = b"\x10"  # VP8 payload descriptor: start of partition 0
CONT = b"\x00"


@dataclass
class Pkt:
    sequence_number: int
    timestamp: int
    marker: int
    payload: bytes


def vp8_frame(seq: int, ts: int, parts: int, key: bool) -> list[tuple[Pkt, bytes]]:
    """``parts`` packets of one VP8 frame; data byte 0 bit 0 is 0 for a keyframe."""
    packets = []
    for i in range(parts):
        data = bytes([0x00 if key else 0x01]) if i == 0 else bytes([0x80 + i])
        payload = (KEY if i == 0 else CONT) + data
        packets.append((Pkt((seq + i) % 65536, ts, int(i == parts - 1), payload), data))
    return packets


def feed(
    assembler: VideoFrameAssembler, packets: list[tuple[Pkt, bytes]], now: float = 0.0
) -> tuple[list[AssembledFrame], bool]:
    frames: list[AssembledFrame] = []
    wants = False
    for packet, data in packets:
        done, want = assembler.add(packet, data, now)
        frames.extend(done)
        wants = wants or want
    return frames, wants


def test_a_frame_is_released_on_its_marker_packet_not_on_the_next_frame() -> None:
    assembler = VideoFrameAssembler("VP8")
    packets = vp8_frame(100, 9000, 3, key=True)
    assert feed(assembler, packets[:2]) == ([], False)
    frames, wants = feed(assembler, packets[2:])
    assert [(f.timestamp, f.keyframe) for f in frames] == [(9000, True)]
    assert frames[0].data == b"\x00\x81\x82"
    assert not wants


def test_reordered_packets_complete_when_the_gap_fills() -> None:
    assembler = VideoFrameAssembler("VP8")
    a, b, c = vp8_frame(65534, 1, 3, key=True)  # wraps past 65535
    assert feed(assembler, [a, c])[0] == []
    frames, _ = feed(assembler, [b])
    assert len(frames) == 1 and frames[0].data == b"\x00\x81\x82"


def test_duplicates_and_late_packets_are_ignored() -> None:
    assembler = VideoFrameAssembler("VP8")
    key = vp8_frame(10, 1, 2, key=True)
    assert len(feed(assembler, key)[0]) == 1
    assert feed(assembler, key) == ([], False)


def test_delta_frames_before_the_first_keyframe_are_dropped_and_a_keyframe_is_wanted() -> None:
    assembler = VideoFrameAssembler("VP8")
    frames, wants = feed(assembler, vp8_frame(10, 1, 2, key=False))
    assert frames == [] and wants
    frames, wants = feed(assembler, vp8_frame(12, 2, 2, key=True))
    assert [f.keyframe for f in frames] == [True] and not wants


def test_a_frame_stuck_on_a_lost_packet_is_dropped_and_forwarding_waits_for_a_keyframe() -> None:
    assembler = VideoFrameAssembler("VP8", stall_timeout=0.25)
    feed(assembler, vp8_frame(0, 1, 2, key=True))
    lost = vp8_frame(2, 2, 3, key=False)
    del lost[1]
    assert feed(assembler, lost, now=1.0) == ([], False)
    frames, wants = feed(assembler, vp8_frame(5, 3, 2, key=False), now=1.1)
    assert frames == [] and not wants  # still waiting for the retransmission
    frames, wants = feed(assembler, vp8_frame(7, 4, 2, key=False), now=1.5)
    assert frames == [] and wants
    frames, _ = feed(assembler, vp8_frame(9, 5, 2, key=True), now=1.6)
    assert [(f.timestamp, f.keyframe) for f in frames] == [(5, True)]


def test_a_slow_paced_keyframe_without_a_gap_is_not_a_stall() -> None:
    assembler = VideoFrameAssembler("VP8", stall_timeout=0.25)
    packets = vp8_frame(0, 1, 4, key=True)
    for t, (packet, data) in enumerate(packets):
        frames, wants = assembler.add(packet, data, now=t * 0.5)
        assert not wants
    assert len(frames) == 1


def test_audio_packets_are_frames_and_old_ones_are_dropped() -> None:
    assembler = AudioFrameAssembler()
    assert len(assembler.add(Pkt(5, 960, 0, b"a"), b"a", 0)[0]) == 1
    assert assembler.add(Pkt(4, 0, 0, b"b"), b"b", 0)[0] == []
    assert assembler.add(Pkt(6, 1920, 0, b"c"), b"c", 0)[0][0].data == b"c"


def test_sequence_numbers_unwrap_both_ways() -> None:
    unwrap = SequenceUnwrapper()
    first = unwrap.extend(65535)
    assert unwrap.extend(0) == first + 1
    assert unwrap.extend(65534) == first - 1


def test_keyframe_bits() -> None:
    assert is_keyframe("VP8", b"\x10\x02") and not is_keyframe("VP8", b"\x11")
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x65\x88"
    assert is_keyframe("H264", idr) and not is_keyframe("H264", b"\x00\x00\x01\x41\x9a")
    assert list(annexb_nal_units(idr)) == [b"\x67\x42", b"\x65\x88"]
    assert may_start_keyframe("VP8", b"\x90\x80\x01") and not may_start_keyframe("VP8", b"\x80")
    stap_a_with_sps = b"\x18\x00\x02\x67\x42"
    fu_a_idr_start, fu_a_idr_middle = b"\x7c\x85", b"\x7c\x05"
    assert may_start_keyframe("H264", stap_a_with_sps)
    assert may_start_keyframe("H264", fu_a_idr_start)
    assert not may_start_keyframe("H264", fu_a_idr_middle)
