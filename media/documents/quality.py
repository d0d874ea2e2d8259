"""Is this capture good enough to keep?  Measures on the straightened document, and prompts.

Thresholds were chosen on ``bench.synthetic_documents`` frames (``make_frames(200, seed)``
for seeds 3 and 11, rectified with their true quads):

* Sharpness is ``1 - blur`` with blur the no-reference measure of Crété-Roffet et al.
  (2007): how much of the image's pixel-to-pixel variation survives a further 9-tap box
  blur.  It is a ratio, so it does not depend on contrast or on the document's size in
  pixels, and it is measured on the rectified image (about the source's resolution), where
  a blur of so many source pixels stays about that many pixels.  On the 243 frames without
  a blur effect it ranged 0.67-0.95 (5th percentile 0.73); all 400 frames after
  ``GaussianBlur(sigma=3)`` ranged 0.25-0.79 (median 0.38, 95th percentile 0.61).
  ``MIN_SHARPNESS`` 0.64 sits between the sharp minimum and the blurred 95th percentile.
  The eight highest blurred frames (down to 0.69) were diplomas, whose large ornaments keep
  their contrast through a box blur: blur on a diploma can pass unflagged.
* Glare is a pixel that is near-saturated (max channel >= 250), colourless (HSV
  saturation < 40 of 255) and at least 15 levels above the document's paper (taken as its
  60th brightness percentile, which a spot covering less than 40 % leaves on paper): a hot
  spot, not paper that is evenly overexposed (24 % of the bench's documents have paper at
  241 or more, where a hot spot cannot be told apart and is not counted).  Known miss: on
  paper within about 20 levels of saturation a large spot lifts the percentile with it (a
  card at 234 with a 30 % spot measured 0), so such glare goes unflagged.  On the 243 frames
  without the bench's glare effect the share had 95th percentile 0.016 and 99th 0.14 (a
  lighting gradient or a shadow leaving one side saturated); ``MAX_GLARE_SHARE`` 0.15 sits
  above them.  The bench's own glare effect is often mild (a +80 level spot on darker paper
  stays below saturation) and is no usable positive set; the test paints a saturated ellipse
  over 30 % of a card.
* ``MIN_COVERAGE`` 0.10: the bench places documents at 15-85 % of the frame; a phone shot
  below a tenth of the frame is a citizen holding the card at arm's length.  A kiosk camera
  that frames A4 sees an ID card at about 7 %, so at a kiosk pass ``physical_mm`` and let
  the resolution decide: ``MIN_PX_PER_MM`` 4 (about 100 dpi, 3.5 mm ID-card characters
  at 14 px), or without a known size ``MIN_SHORT_SIDE_PX`` 216, an ID card's 54 mm at that
  density.
* A corner closer to the frame edge than 1 % of the frame's short side (at least 2 px) is
  ``too_close``; one outside the frame is ``document_cut_off``.  The bench keeps every
  document 2 % + 4 px inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from .geometry import clip_polygon, polygon_area
from .rectify import Rectified, rectify

MIN_SHARPNESS = 0.64
MAX_GLARE_SHARE = 0.15
MIN_COVERAGE = 0.10
MIN_PX_PER_MM = 4.0
MIN_SHORT_SIDE_PX = 216
EDGE_MARGIN = 0.01
GLARE_VALUE = 250
GLARE_SATURATION = 40
GLARE_EXCESS = 15
GLARE_PAPER_PERCENTILE = 60

PROMPT_TEXT: dict[str, tuple[str, str]] = {
    "no_document": ("把证件放在取景框内", "Place the document in the frame"),
    "document_cut_off": (
        "证件超出画面，请把整张证件放进取景框",
        "Part of the document is outside the frame",
    ),
    "too_close": ("离得太近了，请稍微拿远一点", "Too close: move the document a little away"),
    "move_closer": ("证件太小，请靠近一些", "The document is too small: move it closer"),
    "hold_still": ("画面模糊，请拿稳不动", "The picture is blurred: hold still"),
    "avoid_glare": ("有反光，请稍微倾斜证件", "Glare on the document: tilt it slightly"),
}


@dataclass(frozen=True)
class QualityReport:
    verdict: Literal["ok", "retake"]
    prompts: tuple[str, ...]  # codes of PROMPT_TEXT, most urgent first
    coverage: float  # share of the frame inside the quad
    sharpness: float | None  # 0 (smeared) .. 1 (crisp)
    glare_share: float | None  # share of the document lost to glare
    px_per_mm: float | None
    resolution_px: int | None  # short side of the rectified document


def assess(
    frame: NDArray[np.uint8], quad: NDArray[np.floating] | None, rectified: Rectified | None
) -> QualityReport:
    """Judge a BGR frame, its document quad (None: nothing found) and the rectified document
    (None: rectified here, with the ratio estimated from the quad)."""
    if quad is None:
        return QualityReport("retake", ("no_document",), 0.0, None, None, None, None)
    pts = np.asarray(quad, np.float64).reshape(4, 2)
    h, w = frame.shape[:2]
    if rectified is None:
        rectified = rectify(frame, pts)
    box = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    coverage = polygon_area(clip_polygon(pts, box)) / float(w * h)
    sharpness = measure_sharpness(rectified.image)
    glare = measure_glare(rectified.image)
    resolution = min(rectified.width, rectified.height)

    prompts: list[str] = []
    margin = max(2.0, EDGE_MARGIN * min(w, h))
    outside = (pts < -0.5) | (pts > np.array([w - 0.5, h - 0.5]))
    near = (pts < margin - 0.5) | (pts > np.array([w - 0.5, h - 0.5]) - margin)
    if outside.any():
        prompts.append("document_cut_off")
    elif near.any():
        prompts.append("too_close")
    if rectified.px_per_mm is not None:
        too_coarse = rectified.px_per_mm < MIN_PX_PER_MM
    else:
        too_coarse = resolution < MIN_SHORT_SIDE_PX
    if too_coarse or (coverage < MIN_COVERAGE and rectified.px_per_mm is None):
        prompts.append("move_closer")
    if sharpness < MIN_SHARPNESS:
        prompts.append("hold_still")
    if glare > MAX_GLARE_SHARE:
        prompts.append("avoid_glare")
    return QualityReport(
        verdict="retake" if prompts else "ok",
        prompts=tuple(prompts),
        coverage=coverage,
        sharpness=sharpness,
        glare_share=glare,
        px_per_mm=rectified.px_per_mm,
        resolution_px=resolution,
    )


def measure_sharpness(image: NDArray[np.uint8]) -> float:
    """1 - the Crété-Roffet blur of the document's interior (a 4 % border is left out, where
    the warp may have caught background or the card's own rim)."""
    grey = _grey(image).astype(np.float32)
    gh, gw = grey.shape
    my, mx = gh // 25, gw // 25
    grey = grey[my : gh - my, mx : gw - mx]
    if min(grey.shape) < 12:
        return 0.0
    blurs = []
    for ksize, axis in (((9, 1), 1), ((1, 9), 0)):  # along x, then along y
        smooth = cv2.blur(grey, ksize)
        d_sharp = np.abs(np.diff(grey, axis=axis))
        d_smooth = np.abs(np.diff(smooth, axis=axis))
        total = float(d_sharp.sum())
        if total <= 0:
            return 0.0
        kept = float(np.maximum(d_sharp - d_smooth, 0).sum())
        blurs.append((total - kept) / total)
    return 1.0 - max(blurs)


def measure_glare(image: NDArray[np.uint8]) -> float:
    """Share of the document's pixels that are near white, colourless and brighter than its
    paper."""
    value: NDArray[np.uint8]
    if image.ndim == 2:
        value, colourless = image, np.ones(image.shape, bool)
    else:
        hsv = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2HSV), np.uint8)
        value, colourless = hsv[..., 2], hsv[..., 1] < GLARE_SATURATION
    paper = float(np.percentile(value, GLARE_PAPER_PERCENTILE))
    floor = max(float(GLARE_VALUE), paper + GLARE_EXCESS)
    return float(np.mean((value >= floor) & colourless))


def _grey(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)
