"""Four sides fitted to a region's outline (``contour_to_quad``): a hand merged with the
document in a segmentation must not pull the quad off the document, as it does a hull's."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from media.documents.candidates import contour_to_quad, hull_to_quad
from media.documents.geometry import canonical_quads


def _outline(mask: NDArray[np.uint8]) -> NDArray[np.float64]:
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)


def _card(mask: NDArray[np.uint8]) -> NDArray[np.float64]:
    box = cv2.boxPoints(((150.0, 110.0), (170.0, 105.0), 20.0))
    cv2.fillConvexPoly(mask, np.round(box).astype(np.int32), 255)
    return np.asarray(box, np.float64)


def _max_corner_error(got: NDArray[np.float64], want: NDArray[np.float64]) -> float:
    a, b = canonical_quads(got)[0], canonical_quads(want)[0]
    return float(np.hypot(*(a - b).T).max())


def test_fingers_merged_over_a_side_leave_the_card_outline() -> None:
    mask = np.zeros((240, 320), np.uint8)
    card = _card(mask)
    # Three fingers reaching in from the lower right, over the card's right side.
    for dx in (0, 16, 32):
        cv2.line(mask, (225 + dx, 150 - dx // 2), (262 + dx, 205), 255, 11)
    outline = _outline(mask)
    fitted = contour_to_quad(outline)
    assert fitted is not None
    assert _max_corner_error(fitted, card) < 4.0
    # The hull's cut-down quad swallows the fingers: what the fit is there to undo.
    hull = hull_to_quad(cv2.convexHull(outline.astype(np.float32)).reshape(-1, 2).astype(float))
    assert hull is not None and _max_corner_error(hull, card) > 20.0


def test_a_corner_hidden_by_a_thumb_is_found_where_the_sides_meet() -> None:
    mask = np.zeros((240, 320), np.uint8)
    card = _card(mask)
    corner = card[np.argmax(card.sum(axis=1))]  # the lower-right one
    cv2.circle(mask, (round(corner[0]) - 12, round(corner[1]) - 6), 16, 0, -1)
    fitted = contour_to_quad(_outline(mask))
    assert fitted is not None
    assert _max_corner_error(fitted, card) < 4.0


def test_no_quad_from_an_outline_without_four_straight_sides() -> None:
    mask = np.zeros((240, 320), np.uint8)
    cv2.ellipse(mask, (160, 120), (110, 70), 15.0, 0, 360, 255, -1)
    assert contour_to_quad(_outline(mask)) is None
    triangle = np.zeros((240, 320), np.uint8)
    cv2.fillConvexPoly(triangle, np.array([[40, 200], [280, 200], [160, 30]], np.int32), 255)
    assert contour_to_quad(_outline(triangle)) is None  # n < 5 runs: the hull quad's job
