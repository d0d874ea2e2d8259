"""Segment files: picture size from keyframe headers, remuxed files that decode back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from media.picture_size import picture_size
from media.recorder import first_free_take, take_prefix
from media.segment_file import SegmentFile, TrackSpec, container_format
from media.synthetic import encode_audio, encode_video

SIZES = [(320, 240), (640, 480), (1280, 720), (642, 362)]


@pytest.mark.parametrize("codec", ["VP8", "H264"])
@pytest.mark.parametrize("size", SIZES)
def test_picture_size_is_read_from_the_keyframe_header(codec: str, size: tuple[int, int]) -> None:
    clip = encode_video(codec, 2, *size)
    assert picture_size(codec, clip.frames[0]) == size
    if codec == "VP8":
        assert picture_size(codec, clip.frames[1]) is None  # a delta frame has no size


def test_picture_size_of_garbage_is_none() -> None:
    assert picture_size("VP8", b"\x00" * 20) is None
    assert picture_size("H264", b"\x00\x00\x00\x01\x67\x42") is None
    assert picture_size("H264", b"") is None


def test_container_follows_the_codecs() -> None:
    vp8 = TrackSpec("v", "video", "VP8", 90_000)
    h264 = TrackSpec("h", "video", "H264", 90_000)
    opus = TrackSpec("a", "audio", "opus", 48_000)
    assert container_format([vp8, opus]) == ("webm", ".webm")
    assert container_format([h264, opus]) == ("matroska", ".mkv")


@pytest.mark.parametrize("codec", ["VP8", "H264"])
def test_a_segment_file_decodes_back_with_its_duration_and_hash(
    tmp_path: Path, codec: str
) -> None:
    video = encode_video(codec, 60)
    audio = encode_audio(2.0)
    specs = [TrackSpec("cam", "video", codec, 90_000), TrackSpec("mic", "audio", "opus", 48_000)]
    segment = SegmentFile(tmp_path / "s-0000", [(specs[0], video.frames[0]),
                                                (specs[1], audio.frames[0])])
    for n, data in enumerate(video.frames):
        segment.write("cam", 1500 + n * 3000, n == 0, data)  # starts 1/60 s in
    assert segment.part.exists() and not segment.path.exists()
    for n, data in enumerate(audio.frames):
        segment.write("mic", n * 960, True, data)
    closed = segment.close()

    assert closed.path == segment.path and not segment.part.exists()
    assert closed.size_bytes == closed.path.stat().st_size
    assert closed.sha256 == hashlib.sha256(closed.path.read_bytes()).hexdigest()
    assert closed.duration_s == pytest.approx(2.0 + 1 / 60, abs=0.002)
    assert closed.tracks == ("cam", "mic")
    with av.open(str(closed.path)) as container:
        assert (container.duration or 0) / 1e6 == pytest.approx(closed.duration_s, abs=0.01)
        titles = [s.metadata["title"] for s in container.streams]
        assert titles == ["cam", "mic"]
        width = container.streams.video[0].codec_context.width
        frames = sum(1 for _ in container.decode(video=0))
    assert (width, frames) == (320, 60)


def test_timestamps_that_go_backwards_are_nudged_forward(tmp_path: Path) -> None:
    video = encode_video("VP8", 3)
    spec = TrackSpec("cam", "video", "VP8", 90_000)
    segment = SegmentFile(tmp_path / "s", [(spec, video.frames[0])])
    for ticks, data in zip((0, 3000, 2000), video.frames, strict=True):
        segment.write("cam", ticks, ticks == 0, data)
    closed = segment.close()
    with av.open(str(closed.path)) as container:
        pts = [p.pts or 0 for p in container.demux(video=0) if p.size]
    assert pts == sorted(pts) and len(pts) == 3


def test_a_restarted_process_does_not_reuse_a_take_that_has_files(tmp_path: Path) -> None:
    assert first_free_take(tmp_path, "s1") == 0  # no directory yet
    session_dir = tmp_path / "s1"
    session_dir.mkdir()
    (session_dir / "s1-0000.webm").write_bytes(b"x")
    (session_dir / "s1-t1-0003.mkv").write_bytes(b"x")
    (session_dir / "s1-t2-notes.txt").write_bytes(b"x")  # not a segment
    assert first_free_take(tmp_path, "s1") == 2
    assert first_free_take(tmp_path, "s1", start=1) == 2
    assert first_free_take(tmp_path, "s1", start=3) == 3
    assert first_free_take(tmp_path, "s2") == 0
    assert take_prefix("s1", 0) == "s1" and take_prefix("s1", 2) == "s1-t2"
