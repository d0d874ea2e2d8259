"""One capture, start to finish: decoded frame in, the two images a case file keeps out.

Both capture paths end here: an upload from the citizen's page (:func:`process_upload`,
bytes through the safe decode of :mod:`media.intake`) and a stream snapshot
(:func:`process_frame`, a BGR frame the media endpoint decoded from a keyframe). Pure and
CPU-bound, no I/O: the server runs it in a worker process pool, so everything in and out
is picklable (bytes, numbers, tuples, frozen dataclasses).

What gets kept:

* the *original*: the whole frame, re-encoded without metadata (uploads: the bytes
  :func:`~media.intake.decode_upload` re-encoded, never the uploaded bytes; snapshots: the
  decoded keyframe as JPEG);
* the *processed* image: the document straightened to its real shape as JPEG, or the whole
  frame when no document was found (then the verdict is ``retake`` with ``no_document``,
  and the clerk still sees what the camera saw).

The shape: an identity card is 85.6 x 54 mm (``physical_mm``, which also gives the
resolution in px/mm); a ``certificate``/``other`` material takes the catalogue's
``aspect_ratio`` (width / height, so 0.707 is portrait A4); anything else is estimated from
the quad's perspective (:func:`media.documents.rectify.estimate_aspect`).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from media.intake import decode_upload

from .detect import detect_quad
from .quality import PROMPT_TEXT, QualityReport, assess
from .rectify import MATERIAL_SIZES_MM, Rectified, rectify

PROCESSED_QUALITY = 90
SNAPSHOT_QUALITY = 92
_MIN_SIDE = 32  # detect_quad's own minimum

ContentType = Literal["image/jpeg", "image/png"]
AspectSource = Literal["physical", "catalogue", "estimated", "none"]


@dataclass(frozen=True)
class StoredImage:
    """One image as it will be stored: its bytes, address and shape."""

    data: bytes
    sha256: str
    content_type: ContentType
    width: int
    height: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return "png" if self.content_type == "image/png" else "jpg"


@dataclass(frozen=True)
class ProcessedCapture:
    original: StoredImage
    processed: StoredImage
    quad: tuple[tuple[float, float], ...] | None
    """TL, TR, BR, BL in the original's pixels; None when no document was found."""
    quality: QualityReport
    aspect_source: AspectSource
    """Where the processed image's shape came from; ``none``: not rectified."""

    def quality_json(self) -> dict[str, Any]:
        """The report with the prompts' texts, as stored with the document and sent to pages."""
        report = asdict(self.quality)
        report["prompts"] = list(self.quality.prompts)
        report["prompt_texts"] = [
            {"code": code, "zh": PROMPT_TEXT[code][0], "en": PROMPT_TEXT[code][1]}
            for code in self.quality.prompts
        ]
        report["quad"] = None if self.quad is None else [list(p) for p in self.quad]
        report["aspect_source"] = self.aspect_source
        return report


def process_upload(
    data: bytes,
    material_kind: str,
    *,
    aspect_ratio: float | None = None,
    max_bytes: int = 15 * 1024 * 1024,
    max_pixels: int = 40_000_000,
) -> ProcessedCapture:
    """An uploaded photo of a material. Raises :class:`media.intake.ImageRejected` (with
    its own error code) for anything that is not a safe JPEG/PNG/WebP within the caps."""
    decoded = decode_upload(data, max_bytes=max_bytes, max_pixels=max_pixels)
    content_type: ContentType = "image/png" if decoded.original_format == "png" else "image/jpeg"
    original = _stored(decoded.reencoded, content_type, decoded.width, decoded.height)
    return _process(decoded.bgr, original, material_kind, aspect_ratio)


def process_frame(
    bgr: NDArray[np.uint8], material_kind: str, *, aspect_ratio: float | None = None
) -> ProcessedCapture:
    """A frame from the live stream (BGR, H x W x 3, uint8)."""
    if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"process_frame expects an H x W x 3 uint8 image, got {bgr.shape}")
    height, width = bgr.shape[:2]
    original = _stored(_jpeg(bgr, SNAPSHOT_QUALITY), "image/jpeg", width, height)
    return _process(np.ascontiguousarray(bgr), original, material_kind, aspect_ratio)


def rectify_options(
    material_kind: str, aspect_ratio: float | None
) -> tuple[dict[str, Any], Literal["physical", "catalogue", "estimated"]]:
    """Keyword arguments for :func:`rectify` from what is known about the material."""
    size = MATERIAL_SIZES_MM.get(material_kind)
    if size is not None:
        return {"physical_mm": size}, "physical"
    if aspect_ratio is not None:
        if not aspect_ratio > 0:
            raise ValueError(f"aspect_ratio must be positive, got {aspect_ratio}")
        return {"aspect_ratio": max(aspect_ratio, 1.0 / aspect_ratio)}, "catalogue"
    return {}, "estimated"


def _process(
    bgr: NDArray[np.uint8], original: StoredImage, material_kind: str,
    aspect_ratio: float | None,
) -> ProcessedCapture:
    options, source = rectify_options(material_kind, aspect_ratio)
    quad = detect_quad(bgr) if min(bgr.shape[:2]) >= _MIN_SIDE else None
    rectified: Rectified | None = None
    if quad is not None:
        try:
            rectified = rectify(bgr, quad, **options)
        except ValueError:  # a degenerate quad is no document
            quad = None
    report = assess(bgr, quad, rectified)
    used: AspectSource = "none"
    processed_bgr = bgr
    if rectified is not None:
        processed_bgr, used = rectified.image, source
    ph, pw = processed_bgr.shape[:2]
    processed = _stored(_jpeg(processed_bgr, PROCESSED_QUALITY), "image/jpeg", pw, ph)
    corners = None if quad is None else tuple(
        (round(float(x), 2), round(float(y), 2)) for x, y in np.asarray(quad).reshape(4, 2))
    return ProcessedCapture(original, processed, corners, report, used)


def _stored(data: bytes, content_type: ContentType, width: int, height: int) -> StoredImage:
    return StoredImage(data, hashlib.sha256(data).hexdigest(), content_type, width, height)


def _jpeg(bgr: NDArray[np.uint8], quality: int) -> bytes:
    """Encode with Pillow from the bare pixels: no EXIF, ICC or comment can ride along."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(
        out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()
