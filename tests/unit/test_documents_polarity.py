"""A side's edges step one way; a checkerboard's rows step up and down in turn
(``EdgeMaps.polarities``, ``side_support``'s third column, the ``alternating`` cue)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from media.documents import detect_quad
from media.documents.edges import ORIENTATION_BINS, edge_maps, side_support
from media.documents.geometry import document_frame_iou
from media.documents.scoring import FEATURES, alternating, edge_features, edge_score, score


def _checkerboard(
    size: tuple[int, int], period: float, angle: float, seed: int
) -> NDArray[np.float32]:
    """A blue checked cloth, squares ``period`` pixels wide, turned by ``angle`` radians."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    t = ((np.floor(u / period) + np.floor(v / period)) % 2)[..., None]
    dark, light = np.array([70, 110, 190.0]), np.array([120, 150, 210.0])
    img = dark * (1 - t) + light * t + rng.normal(0, 3, (h, w, 1))
    return np.asarray(cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8), np.float32)


def _page_on(
    desk: NDArray[np.float32], seed: int
) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """A light printed page laid on ``desk``, slightly skewed, and its corners."""
    rng = np.random.default_rng(seed)
    h, w = desk.shape[:2]
    doc_w, doc_h = 300, 220
    doc = np.full((doc_h, doc_w, 3), (236, 240, 242), np.float32)
    for row in range(30, doc_h - 30, 18):
        cv2.rectangle(doc, (30, row), (int(rng.integers(120, 270)), row + 4), (40, 40, 40), -1)
    cx, cy = rng.uniform(0.4, 0.6) * w, rng.uniform(0.4, 0.6) * h
    quad = np.array(
        [[cx - 150, cy - 105], [cx + 140, cy - 115], [cx + 150, cy + 110], [cx - 145, cy + 105]],
        np.float32,
    )
    src = np.array([[0, 0], [doc_w, 0], [doc_w, doc_h], [0, doc_h]], np.float32)
    warp = cv2.getPerspectiveTransform(src, quad)
    page = cv2.warpPerspective(doc, warp, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones((doc_h, doc_w), np.float32), warp, (w, h))[..., None]
    image = desk * (1 - mask) + page * mask
    return np.clip(image, 0, 255).astype(np.uint8), quad


def test_the_two_polarities_together_are_the_oriented_edges() -> None:
    image, _ = _page_on(_checkerboard((320, 240), 10.0, 0.3, 1), 1)
    maps = edge_maps(image, 8.0, 16.0)
    ys, xs = np.mgrid[0:240, 0:320]
    for b in range(ORIENTATION_BINS):
        bins = np.full(ys.shape, b, np.intp)
        rise, fall = maps.polarities(bins, ys, xs)
        assert rise.any() and fall.any()
        np.testing.assert_array_equal(rise | fall, maps.oriented(bins, ys, xs))


def test_a_checkerboard_row_alternates_where_a_page_side_does_not() -> None:
    """Both are backed by edges along their whole length; only the row's step up and down."""
    desk = np.zeros((240, 320, 3), np.float32)
    desk[:, :160] = _checkerboard((160, 240), 16.0, 0.0, 2)
    desk[:, 160:] = 60.0
    desk[60:180, 200:290] = 230.0  # a plain light card on the grey half
    image = np.clip(desk, 0, 255).astype(np.uint8)
    maps = edge_maps(image, 8.0, 16.0)
    row = np.array([[[8.0, 79.5], [150.0, 79.5], [150.0, 175.5], [8.0, 175.5]]])  # on rows
    card = np.array([[[199.5, 59.5], [289.5, 59.5], [289.5, 179.5], [199.5, 179.5]]])
    on_rows, on_card = side_support(maps, np.concatenate([row, card]))
    assert on_rows[0, 0] > 0.8 and on_card[0, 0] > 0.8  # the old support: alike
    assert on_rows[0, 2] > 0.3  # the top side: half its edges step the other way
    assert on_card[:, 2].max() < 0.05


def test_alternating_sides_lower_the_score_and_a_little_texture_costs_nothing() -> None:
    feats = np.zeros((3, len(FEATURES)))
    column = FEATURES.index("alternating")
    feats[:, column] = alternating(
        np.array([[0.0, 0.0, 0.0, 0.0], [0.2, 0.1, 0.2, 0.0], [0.45, 0.4, 0.5, 0.45]])
    )
    clean, textured, checked = score(feats)
    assert clean == textured
    assert checked < clean - 5.0


def test_a_page_on_a_checked_cloth_is_found_not_the_cloths_rows() -> None:
    """Rows of the cloth make long straight lines all around the page; without the polarity
    cue an outline of them won here (Jaccard 0.29)."""
    image, quad = _page_on(_checkerboard((640, 480), 10.0, 0.2, 0), 0)
    found = detect_quad(image)
    assert found is not None
    assert document_frame_iou(found, quad) > 0.9


def test_the_first_cut_counts_alternating_sides_too() -> None:
    """A checked cloth makes hundreds of line quads, well backed by edges: in the cheap first
    cut they would crowd out the page's outline before the final ranking saw their rows."""
    quad = np.array([[[40.0, 30.0], [280.0, 30.0], [280.0, 200.0], [40.0, 200.0]]])
    plain = np.full((1, 4, 3), 0.9)
    plain[..., 1:] = 0.0
    checked = plain.copy()
    checked[..., 2] = 0.45
    cut = edge_score(edge_features(np.concatenate([quad, quad]),
                                   np.concatenate([plain, checked]), (240, 320)))
    assert cut[1] < cut[0] - 5.0
