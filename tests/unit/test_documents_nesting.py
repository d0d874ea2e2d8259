"""Which of two nested outlines goes first: the outer one only when a margin frames the inner
one on its own sides, not along sides the two share."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from media.documents.edges import edge_maps
from media.documents.nesting import outermost, side_gaps
from media.documents.scoring import FEATURES


def _box(x0: float, y0: float, x1: float, y1: float) -> NDArray[np.float64]:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _backed(count: int) -> NDArray[np.float64]:
    """Cues of outlines with every side backed by edges (what nesting asks of an outer one)."""
    feats = np.zeros((count, len(FEATURES)))
    feats[:, FEATURES.index("support_min")] = 0.9
    feats[:, FEATURES.index("support_mean")] = 0.95
    return feats


def test_side_gaps_measure_each_side_against_the_inner_outline() -> None:
    inner = _box(10, 10, 110, 60)
    wider = _box(10, 10, 150, 60)
    framed = _box(1, 1, 121, 61)
    np.testing.assert_allclose(side_gaps(wider[None], inner), [[0, 40, 0, 0]])
    np.testing.assert_allclose(side_gaps(framed[None], inner), [[9, 11, 1, 9]])


def _printed_sheet(image: NDArray[np.uint8], box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    cv2.rectangle(image, (x0, y0), (x1, y1), (236, 238, 240), -1)
    for y in range(y0 + 20, y1 - 15, 12):
        cv2.line(image, (x0 + 15, y), (x1 - 15, y), (40, 40, 40), 2)


def test_a_strip_of_desk_beside_the_sheet_is_no_margin() -> None:
    """The sheet and the desk beside it up to a seam make an outline sharing three of the
    sheet's sides, whose insides there are the sheet's own: that is not a framing margin."""
    image = np.full((240, 360, 3), (214, 220, 222), np.uint8)
    image[:, 280:] = (150, 160, 165)  # the desk changes colour at a seam
    _printed_sheet(image, (60, 40, 200, 200))
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), 0.8), np.uint8)
    sheet, with_strip = _box(60, 40, 200, 200), _box(60, 40, 280, 200)
    maps = edge_maps(image, 8.0, 16.0)
    quads = np.stack([sheet, with_strip])
    assert outermost(quads, _backed(2), np.array([5.0, 4.0]), maps) == 0


def test_a_uniform_margin_around_a_printed_border_puts_the_paper_first() -> None:
    image = np.full((240, 360, 3), (90, 70, 60), np.uint8)
    cv2.rectangle(image, (50, 30), (250, 210), (236, 238, 240), -1)  # the paper
    cv2.rectangle(image, (70, 50), (230, 190), (60, 120, 60), 3)  # its printed border
    _printed_sheet(image, (80, 60, 220, 180))
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), 0.8), np.uint8)
    border, paper = _box(70, 50, 230, 190), _box(50, 30, 250, 210)
    maps = edge_maps(image, 8.0, 16.0)
    assert outermost(np.stack([border, paper]), _backed(2), np.array([5.0, 4.0]), maps) == 1
