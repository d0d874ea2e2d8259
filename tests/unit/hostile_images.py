"""Hostile and awkward uploads for the intake tests, built in memory (no binary files).

Each builder returns the bytes a kiosk or phone could send. PNG bombs are written chunk
by chunk so the declared size and the pixel data can be chosen independently.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

ZIP_MARKER = b"XIAOWU-SMUGGLED-PAYLOAD"
EXIF_SECRET = "SecretCam-9000"
PNG_TEXT_SECRET = "secret-text-chunk"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int) -> bytes:
    """An 8-bit grey PNG of ``width`` x ``height`` zero rows: a few hundred KB that
    decode to ``width * height`` bytes. Compressed in slices, never held whole."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    rows = b"\x00" * ((width + 1) * 1000)
    parts = [packer.compress(rows) for _ in range(height // 1000)]
    parts.append(packer.compress(b"\x00" * ((width + 1) * (height % 1000))))
    parts.append(packer.flush())
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def png_with_ztxt_bomb() -> bytes:
    """A tiny valid PNG whose zTXt chunk inflates to 64 MB of zeros."""
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    inflated = zlib.compressobj(9)
    block = b"\x00" * (1 << 20)
    text = b"".join(inflated.compress(block) for _ in range(64)) + inflated.flush()
    idat = zlib.compress(b"\x00" * (9 * 8))
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"zTXt", b"Comment\x00\x00" + text)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def noise(width: int, height: int, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encode(im: Image.Image, kind: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, kind, **params)
    return out.getvalue()


def jpeg(width: int = 64, height: int = 48) -> bytes:
    return encode(noise(width, height), "JPEG", quality=90)


def truncated_jpeg() -> bytes:
    whole = jpeg(256, 192)
    return whole[: len(whole) * 6 // 10]


def truncated_png() -> bytes:
    whole = encode(noise(128, 96), "PNG")
    return whole[: len(whole) // 2]


def jpeg_with_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.txt", ZIP_MARKER * 8)
    return jpeg() + archive.getvalue()


def png(width: int = 40, height: int = 30, compress_level: int = 6) -> bytes:
    return encode(noise(width, height), "PNG", compress_level=compress_level)


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("Comment", PNG_TEXT_SECRET)
    info.add_itxt("Author", PNG_TEXT_SECRET + "-itxt")
    return encode(noise(40, 30), "PNG", pnginfo=info)


def jpeg_with_orientation(orientation: int, width: int = 60, height: int = 20) -> bytes:
    """A landscape JPEG with an EXIF orientation tag and a camera model to leak."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x0110] = EXIF_SECRET
    im = Image.new("RGB", (width, height), (255, 255, 255))
    im.paste((255, 0, 0), (0, 0, 10, 10))  # a red mark in the top-left corner
    return encode(im, "JPEG", quality=95, exif=exif.tobytes())


def webp() -> bytes:
    return encode(noise(48, 32), "WEBP", quality=90)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (32, 24), (0, 255, 255, 0)), "JPEG", quality=95)


def rgba_png() -> bytes:
    """Left half opaque red, right half fully transparent (black underneath)."""
    im = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    im.paste((255, 0, 0, 255), (0, 0, 10, 10))
    return encode(im, "PNG")


def grey16_png() -> bytes:
    ramp = np.full((8, 8), 0x8000, dtype=np.uint16)
    return encode(Image.fromarray(ramp), "PNG")


def palette_png_with_transparency() -> bytes:
    im = Image.new("P", (10, 10), 0)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))
    im.paste(1, (0, 0, 5, 10))
    return encode(im, "PNG", transparency=0)


def too_large_jpeg(size: int = 25 * 1024 * 1024) -> bytes:
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    return head + np.random.default_rng(1).bytes(size - len(head))


def svg() -> bytes:
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script><rect width='10' height='10'/></svg>"
    )


def tiff() -> bytes:
    return encode(noise(16, 16), "TIFF")


def eps() -> bytes:
    return encode(Image.new("RGB", (16, 16), (0, 0, 0)), "EPS")


def gif() -> bytes:
    return encode(Image.new("P", (16, 16), 0), "GIF")


def bmp() -> bytes:
    return encode(noise(16, 16), "BMP")


def pdf() -> bytes:
    return b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def html() -> bytes:
    return b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"


def jpeg_magic_then_garbage() -> bytes:
    return b"\xff\xd8\xff" + b"\x42" * 500
