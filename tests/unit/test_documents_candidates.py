"""Candidate filtering and cheap cues, computed column by column for speed: each is checked
against a plain statement of what it computes, and on hand-made quads."""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from media.documents.candidates import hull_to_quad, plausible
from media.documents.detect import _PRESELECT, _distinct_best, preselect
from media.documents.edges import ORIENTATION_BINS, edge_maps
from media.documents.geometry import canonical_quads
from media.documents.scoring import EDGE_FEATURES, edge_features, inside

SHAPE = (240, 320)  # h, w of a working image


def _square(x: float, y: float, side: float) -> NDArray[np.float64]:
    return np.array([[x, y], [x + side, y], [x + side, y + side], [x, y + side]], np.float64)


def _cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


def _random_quads(count: int, seed: int) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return rng.uniform([-30, -30], [350, 270], (count, 4, 2))


def _plain_plausible(q: NDArray[np.float64], shape: tuple[int, int]) -> bool:
    """One quad at a time, the conditions as the docstring of ``plausible`` states them."""
    h, w = shape
    margin = 0.03 * max(w, h)
    if not all(-margin < x < w + margin and -margin < y < h + margin for x, y in q):
        return False
    sides = [q[(k + 1) % 4] - q[k] for k in range(4)]
    turns = [_cross(sides[k], sides[(k + 1) % 4]) for k in range(4)]
    if not (all(t > 0 for t in turns) or all(t < 0 for t in turns)):
        return False
    lengths = [math.hypot(*s) for s in sides]
    for k in range(4):
        if abs(turns[k]) / max(lengths[k] * lengths[(k + 1) % 4], 1e-9) <= math.sin(
            math.radians(28)
        ):
            return False
    if min(lengths) <= 0.06 * min(w, h):
        return False
    area = abs(sum(_cross(q[k], q[(k + 1) % 4]) for k in range(4))) / 2
    return area > 0.03 * w * h


def test_plausible_matches_a_quad_by_quad_statement() -> None:
    quads = _random_quads(3000, 1)
    quads[:50] = _square(40, 40, 120) + np.random.default_rng(2).normal(0, 8, (50, 4, 2))
    got = plausible(quads, SHAPE)
    expected = np.array([_plain_plausible(q, SHAPE) for q in quads])
    assert got.sum() > 20  # the random set holds both kinds
    assert np.array_equal(got, expected)


def test_plausible_rejects_concave_tiny_needle_and_outside_quads() -> None:
    good = _square(60, 40, 150)
    concave = good.copy()
    concave[2] = [120, 100]  # the bottom-right corner pushed inside
    tiny = _square(10, 10, 12)
    needle = np.array([[20, 100], [300, 100], [300, 180], [40, 108]], np.float64)  # 22 deg at 0
    outside = _square(200, 40, 150)  # runs 30 px past the right edge (margin is 9.6)
    got = plausible(np.stack([good, concave, tiny, needle, outside]), SHAPE)
    assert got.tolist() == [True, False, False, False, False]


def _plain_edge_features(
    quads: NDArray[np.float64], support: NDArray[np.float64], shape: tuple[int, int]
) -> NDArray[np.float64]:
    h, w = shape
    out = []
    for q, s in zip(quads, support, strict=True):
        inner = sorted(s[:, 0])
        x, y = q[:, 0], q[:, 1]
        area = abs(sum(x[k] * y[(k + 1) % 4] - y[k] * x[(k + 1) % 4] for k in range(4))) / 2
        margin = min(x.min(), y.min(), w - 1 - x.max(), h - 1 - y.max())
        sides = [q[(k + 1) % 4] - q[k] for k in range(4)]
        sines = [
            abs(_cross(sides[k], sides[(k + 1) % 4]))
            / max(math.hypot(*sides[k]) * math.hypot(*sides[(k + 1) % 4]), 1e-9)
            for k in range(4)
        ]
        out.append(
            [
                inner[0],
                inner[1],
                sum(inner) / 4,
                s[:, 1].max(),
                s[:, 1].mean(),
                math.sqrt(area / (w * h)),
                min(max(margin / min(w, h), -0.1), 0.1) * 10,
                min(sines),
                sum(max(v - 0.25, 0.0) for v in s[:, 2]) / 4,
            ]
        )
    return np.array(out)


def test_edge_features_match_a_quad_by_quad_statement() -> None:
    quads = _random_quads(400, 3)
    rng = np.random.default_rng(4)
    support = rng.uniform(0, 1, (400, 4, 3))
    support[::4, 2, 0] = support[::4, 0, 0]  # ties in the sorted support
    got = edge_features(quads, support, SHAPE)
    assert got.shape == (400, len(EDGE_FEATURES))
    np.testing.assert_allclose(got, _plain_edge_features(quads, support, SHAPE), atol=1e-12)


def test_canonical_quads_start_at_least_x_plus_y_with_one_winding() -> None:
    square = _square(50, 30, 100)
    turned = np.roll(square[::-1], 2, axis=0)  # the other winding, another start
    out = canonical_quads(np.stack([square, turned]))
    assert np.array_equal(out[0], square)
    assert np.array_equal(out[1], square)


def test_distinct_best_keeps_the_best_of_near_duplicates() -> None:
    base = _square(50, 30, 100)
    quads = np.stack([base, base + 1.0, base + 40.0, base + 2.5, base - 41.0])
    scores = np.array([1.0, 3.0, 2.0, 0.5, 0.1])
    # 3 % of a 100 px quad is 3 px: quads 0, 1 and 3 are one outline, best scored is 1.
    assert _distinct_best(quads, scores, 10) == [1, 2, 4]
    assert _distinct_best(quads, scores, 2) == [1, 2]


def test_distinct_best_sees_a_duplicate_in_any_corner_order() -> None:
    # Candidates reach the first cut as found (lines and regions start at any corner, wind
    # either way): the same outline must still count once.
    base = _square(50, 30, 100)
    other_order = np.roll((base + 1.0)[::-1], 1, axis=0)
    quads = np.stack([base, other_order, base + 40.0])
    scores = np.array([1.0, 3.0, 2.0])
    assert _distinct_best(quads, scores, 10) == [1, 2]


def test_preselect_keeps_region_outlines_crowded_out_of_the_cheap_cut() -> None:
    # A patterned desk: many distinct line quads that all score better on the cheap cues
    # than the two region outlines (one of them the document) and a near-duplicate of one.
    lines = np.stack([_square(2.0 * k, 1.5 * k, 60 + k) for k in range(3 * _PRESELECT)])
    regions = np.stack([_square(100, 80, 120), _square(100.5, 80.5, 120), _square(20, 20, 150)])
    quads = np.concatenate([lines, regions])
    cheap = np.r_[np.linspace(10.0, 5.0, len(lines)), [1.0, 2.0, 0.5]]
    region = np.r_[np.zeros(len(lines), bool), np.ones(3, bool)]
    kept = preselect(quads, cheap, region)
    n = len(lines)
    assert kept[:_PRESELECT] == _distinct_best(quads, cheap, _PRESELECT)
    # The better of the two near-duplicate region outlines, then the other region outline.
    assert kept[_PRESELECT:] == [n + 1, n + 2]


def test_preselect_adds_nothing_when_regions_made_the_cut() -> None:
    quads = np.stack([_square(10, 10, 80), _square(120, 30, 90), _square(40, 100, 100)])
    cheap = np.array([1.0, 3.0, 2.0])
    region = np.array([False, True, False])
    assert preselect(quads, cheap, region) == [1, 2, 0]


def test_hull_to_quad_cuts_clipped_corners_back_to_the_rectangle() -> None:
    # A card's outline with its four corners cut off (rounded corners, a thumb over one): the
    # four short sides go first, their neighbours meeting again at the true corners.
    octagon = np.array(
        [[60, 40], [240, 40], [250, 50], [250, 160], [236, 170], [64, 170], [50, 160], [50, 50]],
        np.float64,
    )
    quad = hull_to_quad(octagon)
    assert quad is not None
    expected = np.array([[50, 40], [250, 40], [250, 170], [50, 170]], np.float64)
    got = canonical_quads(quad)[0]
    np.testing.assert_allclose(got, canonical_quads(expected)[0], atol=1e-9)


def test_oriented_edges_are_each_bins_edges_dilated() -> None:
    """``EdgeMaps.oriented`` (eight maps packed as bits of one byte, dilated by ORs) says, for
    every bin and pixel, what a 3 x 3 dilation of that bin's own edge map says."""
    rng = np.random.default_rng(7)
    image = np.full((120, 160, 3), 90, np.uint8)
    for _ in range(6):  # rectangles and ellipses at many angles: every bin gets edges
        centre = (float(rng.uniform(20, 140)), float(rng.uniform(20, 100)))
        size = (float(rng.uniform(20, 70)), float(rng.uniform(10, 50)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = cv2.boxPoints((centre, size, float(rng.uniform(0, 180))))
        cv2.fillConvexPoly(image, np.round(box).astype(np.int32), colour)
        cv2.ellipse(image, (centre, size, 30.0), colour[::-1], 2)
    maps = edge_maps(image, 8.0, 16.0)
    ys, xs = np.mgrid[0:120, 0:160]
    for b in range(ORIENTATION_BINS):
        assert maps.near_bin[b].any()
        expected = cv2.dilate(maps.near_bin[b], np.ones((3, 3), np.uint8)) > 0
        np.testing.assert_array_equal(
            maps.oriented(np.full(ys.shape, b, np.intp), ys, xs), expected
        )


def test_inside_matches_a_pair_by_pair_statement() -> None:
    """``scoring.inside`` (one side and one corner at a time over all pairs) against every
    corner tested on every side, one pair of quads at a time."""
    rng = np.random.default_rng(11)
    centres = rng.uniform(60, 260, (40, 1, 2))
    outer = centres + _square(-50, -50, 100)[None] * rng.uniform(0.5, 1.5, (40, 1, 1))
    inner = centres + _square(-30, -30, 60)[None] + rng.uniform(-25, 25, (40, 4, 2))
    quads = np.concatenate([outer, inner])
    found = inside(quads, quads)
    for i, q in enumerate(quads):
        signed = sum(_cross(q[k], q[(k + 1) % 4]) for k in range(4))  # shoelace
        orientation = 1.0 if signed >= 0 else -1.0
        for j, other in enumerate(quads):
            within = all(
                _cross(q[(k + 1) % 4] - q[k], p - q[k])
                * orientation
                / np.hypot(*(q[(k + 1) % 4] - q[k]))
                >= -1.0
                for k in range(4)
                for p in other
            )
            assert found[i, j] == within, (i, j)
    assert found.sum() > len(quads)  # some pairs nest, not only each quad in itself
