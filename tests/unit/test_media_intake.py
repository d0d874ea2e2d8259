"""The intake decode step against a hostile corpus built in memory (tests/unit/hostile_images)."""

from __future__ import annotations

import dataclasses
import io
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageFile

from media.intake import DecodedImage, ImageRejected, decode_upload
from tests.unit import hostile_images as hostile

JPEG_SOI = b"\xff\xd8\xff"


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Sizes of every full decode (``ImageFile.load``) during the test."""
    seen: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        seen.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return seen


def rejected(data: bytes, **limits: int) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        decode_upload(data, **limits)
    return caught.value


def is_close(pixel: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 40) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(bgr)) <= tolerance))


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (20_000, 20_000)])
def test_png_bombs_are_refused_from_the_header_without_decoding(
    width: int, height: int, loads: list[tuple[int, int]]
) -> None:
    bomb = hostile.png_bomb(width, height)
    assert len(bomb) < 1_000_000

    error = rejected(bomb)

    assert error.code == "image_too_many_pixels"
    assert error.status == 413
    assert loads == []


def test_pillow_bomb_warning_is_an_error_even_under_a_generous_cap(
    loads: list[tuple[int, int]],
) -> None:
    """100 MP is under this caller's cap but over Pillow's own limit: still no decode."""
    error = rejected(hostile.png_bomb(10_000, 10_000), max_pixels=200_000_000)

    assert error.code == "image_too_many_pixels"
    assert error.detail["max_pixels"] == Image.MAX_IMAGE_PIXELS
    assert loads == []


def test_pixel_cap_is_checked_on_the_header_size(loads: list[tuple[int, int]]) -> None:
    data = hostile.jpeg(100, 100)

    error = rejected(data, max_pixels=9_999)

    assert error.code == "image_too_many_pixels"
    assert error.detail == {"max_pixels": 9_999, "width": 100, "height": 100}
    assert loads == []
    assert decode_upload(data, max_pixels=10_000).width == 100
    assert loads


def test_no_global_state_is_left_changed() -> None:
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    with pytest.raises(ImageRejected):
        decode_upload(hostile.png_bomb(10_000, 10_000))
    decode_upload(hostile.png())
    assert limit == Image.MAX_IMAGE_PIXELS
    assert warnings.filters == filters


def test_an_empty_file_is_refused() -> None:
    assert rejected(b"").code == "image_empty"


@pytest.mark.parametrize("make", [hostile.too_large_jpeg, lambda: hostile.svg() * 200_000])
def test_the_byte_cap_comes_before_anything_else(
    make: Callable[[], bytes], loads: list[tuple[int, int]]
) -> None:
    data = make()
    assert len(data) > 15 * 1024 * 1024

    error = rejected(data)

    assert error.code == "image_too_large"
    assert error.detail == {"bytes": len(data), "max_bytes": 15 * 1024 * 1024}
    assert loads == []


@pytest.mark.parametrize(
    "make",
    [
        hostile.svg,
        hostile.tiff,
        hostile.eps,
        hostile.gif,
        hostile.bmp,
        hostile.pdf,
        hostile.html,
        lambda: b"RIFF\x00\x00\x00\x00WAVEfmt ",
        lambda: hostile.jpeg()[1:],
    ],
    ids=["svg", "tiff", "eps", "gif", "bmp", "pdf", "html", "riff-wave", "jpeg-minus-1"],
)
def test_formats_outside_the_allow_list_are_refused_by_content(
    make: Callable[[], bytes],
) -> None:
    error = rejected(make())
    assert error.code == "image_format_not_allowed"
    assert error.status == 415


@pytest.mark.parametrize("make", [hostile.truncated_jpeg, hostile.truncated_png])
def test_truncated_images_are_refused(make: Callable[[], bytes]) -> None:
    assert rejected(make()).code == "image_truncated"


def test_garbage_behind_jpeg_magic_is_corrupt() -> None:
    assert rejected(hostile.jpeg_magic_then_garbage()).code == "image_corrupt"


def test_a_ztxt_chunk_bomb_is_a_decompression_bomb() -> None:
    assert rejected(hostile.png_with_ztxt_bomb()).code == "image_decompression_bomb"


def test_a_zip_appended_to_a_jpeg_is_not_stored() -> None:
    data = hostile.jpeg_with_zip()
    assert hostile.ZIP_MARKER in data

    decoded = decode_upload(data)

    assert decoded.original_format == "jpeg"
    assert (decoded.width, decoded.height) == (64, 48)
    assert hostile.ZIP_MARKER not in decoded.reencoded
    assert b"PK\x03\x04" not in decoded.reencoded
    assert decoded.reencoded.endswith(b"\xff\xd9")


def test_a_png_is_accepted_as_png_whatever_it_was_called() -> None:
    """Only bytes arrive here; a PNG uploaded as ``card.jpg`` is a PNG."""
    decoded = decode_upload(hostile.png())
    assert decoded.original_format == "png"
    assert decoded.reencoded.startswith(hostile.PNG_SIGNATURE)


def test_webp_is_accepted_and_stored_as_jpeg() -> None:
    decoded = decode_upload(hostile.webp())
    assert decoded.original_format == "webp"
    assert decoded.bgr.shape == (32, 48, 3)
    assert decoded.reencoded.startswith(JPEG_SOI)
    with Image.open(io.BytesIO(decoded.reencoded)) as stored:
        assert stored.format == "JPEG"


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(3, (slice(-5, None), slice(-5, None))),
     (6, (slice(0, 5), slice(-5, None))),
     (8, (slice(-5, None), slice(0, 5)))],
)
def test_exif_orientation_is_applied_and_exif_dropped(
    orientation: int, corner: tuple[slice, slice]
) -> None:
    """The source is 60x20 with a red mark top-left; rotations move the mark."""
    data = hostile.jpeg_with_orientation(orientation)
    assert hostile.EXIF_SECRET.encode() in data

    decoded = decode_upload(data)

    expected = (20, 60) if orientation == 3 else (60, 20)
    assert decoded.bgr.shape == (*expected, 3)
    assert (decoded.height, decoded.width) == expected
    assert is_close(decoded.bgr[corner].mean(axis=(0, 1)), (0, 0, 255))
    assert is_close(decoded.bgr[0:5, 0:5].mean(axis=(0, 1)), (255, 255, 255))
    assert b"Exif\x00\x00" not in decoded.reencoded
    assert hostile.EXIF_SECRET.encode() not in decoded.reencoded
    with Image.open(io.BytesIO(decoded.reencoded)) as stored:
        assert dict(stored.getexif()) == {}
        assert (stored.height, stored.width) == expected


def test_png_text_chunks_are_stripped() -> None:
    data = hostile.png_with_text()
    assert hostile.PNG_TEXT_SECRET.encode() in data

    stored = decode_upload(data).reencoded

    assert hostile.PNG_TEXT_SECRET.encode() not in stored
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"iCCP", b"eXIf"):
        assert chunk not in stored
    with Image.open(io.BytesIO(stored)) as reopened:
        assert "Comment" not in reopened.info


def test_stored_bytes_depend_on_the_pixels_only() -> None:
    """Same pixels with and without metadata, compressed differently, stored identically."""
    assert decode_upload(hostile.png_with_text()).reencoded == decode_upload(
        hostile.png(compress_level=1)
    ).reencoded


@pytest.mark.parametrize(
    "make",
    [hostile.jpeg, hostile.png, hostile.webp, hostile.cmyk_jpeg, hostile.rgba_png,
     hostile.jpeg_with_zip, hostile.png_with_text],
)
def test_stored_bytes_never_equal_the_upload(make: Callable[[], bytes]) -> None:
    data = make()
    assert decode_upload(data).reencoded != data


@pytest.mark.parametrize("make", [hostile.png, hostile.jpeg])
def test_uploading_our_own_output_still_yields_fresh_bytes(make: Callable[[], bytes]) -> None:
    first = decode_upload(make())
    second = decode_upload(first.reencoded)
    assert second.reencoded != first.reencoded
    if first.original_format == "png":
        assert np.array_equal(second.bgr, first.bgr)


def test_cmyk_jpeg_becomes_rgb() -> None:
    decoded = decode_upload(hostile.cmyk_jpeg())
    assert decoded.bgr.shape == (24, 32, 3)
    assert is_close(decoded.bgr.mean(axis=(0, 1)), (0, 0, 255))
    with Image.open(io.BytesIO(decoded.reencoded)) as stored:
        assert stored.mode == "RGB"


def test_rgba_png_is_composited_on_white() -> None:
    decoded = decode_upload(hostile.rgba_png())
    assert np.array_equal(decoded.bgr[:, :10], np.full((10, 10, 3), (0, 0, 255)))
    assert np.array_equal(decoded.bgr[:, 10:], np.full((10, 10, 3), 255))
    with Image.open(io.BytesIO(decoded.reencoded)) as stored:
        assert stored.mode == "RGB"


def test_palette_transparency_is_composited_on_white() -> None:
    decoded = decode_upload(hostile.palette_png_with_transparency())
    assert np.array_equal(decoded.bgr[:, :5], np.full((10, 5, 3), (255, 0, 0)))
    assert np.array_equal(decoded.bgr[:, 5:], np.full((10, 5, 3), 255))


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    decoded = decode_upload(hostile.grey16_png())
    assert np.array_equal(decoded.bgr, np.full((8, 8, 3), 128))


def test_the_result_is_frozen_and_opencv_ready() -> None:
    decoded = decode_upload(hostile.jpeg())
    assert decoded.bgr.dtype == np.uint8
    assert decoded.bgr.flags["C_CONTIGUOUS"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.width = 1  # type: ignore[misc]
    assert isinstance(decoded, DecodedImage)
