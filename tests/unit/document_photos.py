"""Photos of documents for capture tests: a light page with dark print on a dark pad."""

from __future__ import annotations

import io

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image


def document_frame(
    doc_w: int, doc_h: int, *, size: tuple[int, int] = (1280, 960), seed: int = 1,
    tilt: float = 0.06,
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """A light document with dark print on a dark, slightly noisy pad, seen at a slant."""
    rng = np.random.default_rng(seed)
    width, height = size
    doc = np.full((doc_h, doc_w, 3), (236, 240, 242), np.uint8)
    for row in range(doc_h // 10, doc_h - doc_h // 10, max(8, doc_h // 14)):
        left = doc_w // 12
        for _ in range(6):
            run = int(rng.integers(doc_w // 20, doc_w // 8))
            cv2.rectangle(doc, (left, row), (min(doc_w - doc_w // 12, left + run), row + 4),
                          (40, 40, 40), -1)
            left += run + doc_w // 30
    frame = (rng.normal(45, 6, (height, width, 3))).clip(0, 255).astype(np.uint8)
    cx, cy = width / 2, height / 2
    hw, hh = doc_w / 2, doc_h / 2
    quad = np.array([[cx - hw * (1 - tilt), cy - hh], [cx + hw * (1 - tilt), cy - hh],
                     [cx + hw, cy + hh], [cx - hw, cy + hh]], np.float32)
    src = np.array([[0, 0], [doc_w, 0], [doc_w, doc_h], [0, doc_h]], np.float32)
    warp = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(doc, warp, (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((doc_h, doc_w), 255, np.uint8), warp, (width, height))
    frame[mask > 127] = warped[mask > 127]
    return frame, quad


def jpeg_of(bgr: NDArray[np.uint8], **params: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(bgr[:, :, ::-1]).save(out, "JPEG", quality=92, **params)
    return out.getvalue()
