"""The safe decode step for uploaded document photos: bytes in, a clean image out.

Pure and CPU-bound (callers run it in a worker pool). What it stores is never what was
uploaded: the pixels are decoded and encoded afresh from a new image with no metadata,
so EXIF (GPS, device serials), ICC profiles, text chunks and anything appended after the
image (a ZIP behind a JPEG, a script in a comment) are left behind.

The format is decided by the leading magic bytes only. The file name and declared
content type are irrelevant: a PNG named ``card.jpg`` is accepted, as a PNG.

Order of checks, cheapest first: empty, byte cap, magic bytes, header (Pillow's
``Image.open`` is lazy and reads only the header, restricted to the sniffed format),
pixel cap on the header size, then the full decode with ``load()``. ``verify()`` is never
used: it passes a truncated JPEG.

Pillow's own decompression-bomb guard uses the process-wide ``Image.MAX_IMAGE_PIXELS``.
It is left untouched; its warning is turned into an error for the duration of the call
with ``warnings.catch_warnings()``. That context manager is not thread-safe before
Python 3.14, so in a thread pool the warning filter is best effort; the per-call
``max_pixels`` check on the header size does not depend on it. The effective cap is the
lower of ``max_pixels`` and Pillow's limit (89.5 MP by default).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from media.errors import MediaError

ImageFormat = Literal["jpeg", "png", "webp"]

_PILLOW_FORMAT: dict[ImageFormat, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_JPEG_QUALITY = 92
_EXIF_ORIENTATION = 0x0112
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Pillow's messages for a zlib bomb in PNG text / ICC chunks (raised as ValueError).
_PNG_CHUNK_BOMB = ("decompressed data too large", "too much memory used in text chunks")


class ImageRejected(MediaError):
    """An upload that is not stored. ``code`` says why; clients switch on it."""

    code = "image_rejected"


class ImageEmpty(ImageRejected):
    code = "image_empty"

    def __init__(self) -> None:
        super().__init__("上传的文件为空", "the uploaded file is empty")


class ImageTooLarge(ImageRejected):
    code = "image_too_large"
    status = 413

    def __init__(self, size: int, max_bytes: int) -> None:
        super().__init__(
            f"文件过大（上限 {max_bytes // (1024 * 1024)} MB）",
            f"file is {size} bytes, the limit is {max_bytes}",
            detail={"bytes": size, "max_bytes": max_bytes},
        )


class ImageTooManyPixels(ImageRejected):
    code = "image_too_many_pixels"
    status = 413

    def __init__(self, max_pixels: int, size: tuple[int, int] | None = None) -> None:
        detail: dict[str, int] = {"max_pixels": max_pixels}
        declared = ""
        if size is not None:
            detail |= {"width": size[0], "height": size[1]}
            declared = f"{size[0]}x{size[1]} "
        super().__init__(
            "图片分辨率过高，请降低分辨率后重新上传",
            f"image {declared}exceeds {max_pixels} pixels",
            detail=detail,
        )


class ImageFormatNotAllowed(ImageRejected):
    code = "image_format_not_allowed"
    status = 415

    def __init__(self) -> None:
        super().__init__(
            "仅支持 JPEG、PNG、WebP 格式的图片",
            "only JPEG, PNG and WebP images are accepted (judged by content, not by name)",
        )


class ImageTruncated(ImageRejected):
    code = "image_truncated"

    def __init__(self, reason: str) -> None:
        super().__init__("图片文件不完整，请重新上传", f"image is truncated: {reason}")


class ImageCorrupt(ImageRejected):
    code = "image_corrupt"

    def __init__(self, reason: str) -> None:
        super().__init__("图片文件已损坏，无法读取", f"image does not decode: {reason}")


class ImageDecompressionBomb(ImageRejected):
    code = "image_decompression_bomb"

    def __init__(self, reason: str) -> None:
        super().__init__("图片文件异常，已拒绝", f"decompression bomb: {reason}")


@dataclass(frozen=True)
class DecodedImage:
    """An accepted upload. ``reencoded`` is what gets stored; ``bgr`` is for OpenCV."""

    bgr: npt.NDArray[np.uint8]
    original_format: ImageFormat
    width: int
    height: int
    reencoded: bytes


def sniff_format(data: bytes) -> ImageFormat | None:
    """The allow-listed format the magic bytes announce, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_upload(
    data: bytes, *, max_bytes: int = 15 * 1024 * 1024, max_pixels: int = 40_000_000
) -> DecodedImage:
    """Decode an upload, apply its EXIF orientation and re-encode it without metadata.

    Raises an :class:`ImageRejected` subclass; no other exception escapes for bad input.
    """
    if not data:
        raise ImageEmpty()
    if len(data) > max_bytes:
        raise ImageTooLarge(len(data), max_bytes)
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageFormatNotAllowed()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = _open_header(data, fmt, max_pixels)
        try:
            with im:
                rgb = _load_rgb(im)
                orientation = _orientation(im)
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageDecompressionBomb(str(exc)) from exc
        except Exception as exc:
            raise _decoder_failure(exc) from exc
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    pixels: npt.NDArray[np.uint8] = np.asarray(rgb, dtype=np.uint8)
    return DecodedImage(
        bgr=np.ascontiguousarray(pixels[:, :, ::-1]),
        original_format=fmt,
        width=rgb.width,
        height=rgb.height,
        reencoded=_reencode(pixels, fmt, data),
    )


def _open_header(data: bytes, fmt: ImageFormat, max_pixels: int) -> Image.Image:
    """Read only the header, as the sniffed format, and enforce the pixel cap on it."""
    try:
        im = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMAT[fmt]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refused the declared size before any pixel was decoded.
        pillow_cap = Image.MAX_IMAGE_PIXELS or max_pixels
        raise ImageTooManyPixels(min(max_pixels, pillow_cap)) from exc
    except UnidentifiedImageError as exc:
        raise ImageCorrupt(f"not a readable {fmt} header") from exc
    except Exception as exc:
        raise _decoder_failure(exc) from exc
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise ImageTooManyPixels(max_pixels, (width, height))
    if width == 0 or height == 0:
        im.close()
        raise ImageCorrupt(f"declared size {width}x{height}")
    return im


def _load_rgb(im: Image.Image) -> Image.Image:
    """Decode fully and convert to 8-bit RGB, compositing any transparency on white."""
    im.load()
    if im.mode.startswith("I"):
        # 16-bit grey: keep the top 8 bits; Pillow's convert would clip everything >255.
        wide = np.clip(np.asarray(im, dtype=np.int64), 0, 0xFFFF)
        im = Image.fromarray((wide >> 8).astype(np.uint8))
    if im.mode == "P" or im.mode == "PA" or (im.mode != "RGBA" and "transparency" in im.info):
        im = im.convert("RGBA")
    if im.mode in ("LA", "La", "RGBa"):
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    return im.convert("RGB")


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation, 1 when absent or unreadable (a bad tag is not a bad image)."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def _reencode(pixels: npt.NDArray[np.uint8], fmt: ImageFormat, original: bytes) -> bytes:
    """A fresh encoding of the pixels alone: a new image carries no info, EXIF or ICC.

    Lossless PNG has fixed points (uploading our own output gives the same bytes back),
    so on equality the second setting is used; it differs in the zlib header (PNG) or
    the quantisation tables (JPEG), so the stored bytes never equal the upload.
    """
    clean = Image.fromarray(pixels)
    settings: tuple[dict[str, int], dict[str, int]]
    if fmt == "png":
        kind = "PNG"
        settings = ({"compress_level": 6}, {"compress_level": 9})
    else:
        kind = "JPEG"
        settings = ({"quality": _JPEG_QUALITY}, {"quality": _JPEG_QUALITY - 2})
    for params in settings:
        out = io.BytesIO()
        clean.save(out, kind, optimize=False, **params)
        encoded = out.getvalue()
        if encoded != original:
            break
    return encoded


def _decoder_failure(exc: Exception) -> ImageRejected:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "truncated" in lowered:
        return ImageTruncated(text)
    if isinstance(exc, ValueError) and any(s in lowered for s in _PNG_CHUNK_BOMB):
        return ImageDecompressionBomb(text)
    return ImageCorrupt(text)
