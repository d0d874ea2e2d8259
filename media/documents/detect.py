"""Find the one document in a camera frame: its four corners, or None.

Candidates come from a downscaled copy (oriented Hough lines and segmented regions, see
``candidates``, one of them the document map of ``mask``); the cheap edge cues of ``scoring``
keep the most promising, all its cues and their overlap with the document map rank those, an
outline holding the best one across a uniform margin goes first (``nesting``), and
that is refined on the full-resolution frame (``refine``), then widened to a booklet's cover
when a rim of one colour runs around it (``rim``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from .candidates import hough_lines, plausible, quads_from_lines, region_quads
from .edges import EdgeMaps, edge_maps, side_contrast, side_support
from .geometry import canonical_quads, order_corners
from .interior import interior_features, print_density
from .mask import document_probability, quad_overlap
from .nesting import outermost
from .refine import refine_quad, search_radius
from .rim import widen_to_rim
from .scoring import FEATURES, edge_features, edge_score, features, score

WORK_SIZE = 400  # long side of the working image, in pixels (rounded to an integer factor)
_CANNY = (8.0, 16.0)
_PRESELECT = 60  # candidates that get every cue, after a first cut on the cheap ones
_TRIES = 3
_MIN_SUPPORT = 0.45  # mean fraction of the sides with edges, below which nothing is a document
# Best score below which the frame holds no document.  Pure noise scores below -7.4.  At -4.5,
# documents with weak cues (ID cards on pale desks, a booklet on newsprint) went unfound on
# 1-3 frames in 432 of bench seeds 4242, 2015 and 777, found at -6.5 if often only roughly
# (Jaccard 0.15-0.94): mean +0.001 to +0.003, for 0-2 more false positives on 54 empty desks.
_MIN_SCORE = -6.5
# How much better a later candidate must score, on its sides as fitted to the full image,
# to be finished before the first (see ``rerank``).
_RERANK_MARGIN = 1.0
# How far below the first a candidate may score and still be fitted to compete with it: on
# bench frames the choices that rerank changed were all between candidates within 2 points.
_RERANK_GAP = 2.0
# The document map (``mask``): a candidate scores _MASK_WEIGHT x (its overlap with the map -
# _MASK_CENTRE) more; a region outline overlapping it by _MASK_KEEP stays a candidate however
# faint its sides, and a candidate overlapping it by _MASK_SURE is tried however low its edge
# cues score.  Chosen on frames of seed 60002 of both generators (200 documents, 20 empty
# desks; neither a training seed of the map nor an evaluation seed of bench/documents.py),
# with the first network: weights 8-48 and centres 0.3-0.7 gave mean Jaccard 0.956-0.967
# against 0.935 without the map, 32 / 0.5 the best with the fewest false positives (2 of 20
# against 8); keeping and trying the outlines the map backs (a pale card on a pale desk,
# found by the map alone) 0.971 with _MASK_SURE 0.85 and 0.975 with 0.75, no more false
# positives.  A correct outline overlaps a small card's map by only 0.75-0.85: the map's
# cells along its sides are half document.  With the shipped network: 0.977 and 1 false
# positive at 32 / 0.5 (weights 16, 24, 48: 0.973, 0.973, 0.977).
_MASK_WEIGHT = 32.0
_MASK_CENTRE = 0.5
_MASK_SURE = 0.75
_MASK_KEEP = 0.6
_NESTING = [FEATURES.index("holds_others"), FEATURES.index("held_by_other")]


@dataclass(frozen=True)
class Candidates:
    """Ranked candidate outlines on the working image."""

    factor: int  # full-resolution pixels per working pixel, rounded
    quads: NDArray[np.float64]  # N x 4 x 2, working image
    features: NDArray[np.float64]  # N x len(scoring.FEATURES)
    scores: NDArray[np.float64]  # N, best first
    maps: EdgeMaps
    density: NDArray[np.float32]  # interior.print_density of the maps
    probability: NDArray[np.float32]  # mask.document_probability of the frame
    overlap: NDArray[np.float64]  # N, mask.quad_overlap of each quad with it
    scale: NDArray[np.float64]  # (x, y) full-resolution pixels per working pixel, exactly


def detect_quad(image: NDArray[np.uint8]) -> NDArray[np.float32] | None:
    """Corners (TL, TR, BR, BL; 4 x 2 float32, image pixel coordinates) of the document in a
    BGR uint8 frame, or None when no document stands out."""
    _check(image)
    found = candidates(image)
    if found is None:
        return None
    tries = to_try(found.scores, found.overlap)
    if not tries:
        return None
    factor = found.factor
    tolerance = max(1.0, 0.4 * factor)
    fitted: dict[int, NDArray[np.float64]] = {}

    def fit(k: int) -> NDArray[np.float64]:
        if k not in fitted:
            full = (found.quads[k] + 0.5) * found.scale - 0.5
            fitted[k] = refine_quad(image, full, search_radius(factor), tolerance).quad
        return fitted[k]

    ranked = contenders(found.scores, tries)
    order = [ranked[i] for i in rerank(found, ranked, [fit(k) for k in ranked])]
    for k in order + [k for k in tries if k not in ranked]:
        fine = refine_quad(image, fit(k), 3 + factor // 2, tolerance)
        if plausible(fine.quad[None], image.shape[:2])[0]:
            return order_corners(widen_to_rim(image, fine.quad))
    return None


def contenders(scores: NDArray[np.float64], tries: list[int]) -> list[int]:
    """The first of ``tries`` and the runners-up fitted to compete with it in ``rerank``: those
    within _RERANK_GAP of its score (each costs a refinement).  An outline ``nesting`` put
    first over better-scoring ones competes with none."""
    first = scores[tries[0]]
    if scores[tries].max() > first:
        return tries[:1]
    return [tries[0], *(k for k in tries[1:] if scores[k] >= first - _RERANK_GAP)]


def rerank(found: Candidates, tries: list[int], coarse: list[NDArray[np.float64]]) -> list[int]:
    """Order (indices into ``tries``) in which to finish the candidates, once each has been
    fitted to the full image: the first unless another, scored again on its fitted sides,
    beats it by _RERANK_MARGIN.

    The ranking scored outlines as found on the working image, where a region's hull or a
    line a few degrees off lies beside the real side and loses support it would have once
    fitted.  A first that ``nesting`` promoted over better-scoring ones keeps its place: its
    inner outline would outscore it again.
    """
    order = list(range(len(tries)))
    if len(tries) < 2 or found.scores[tries[0]] < found.scores[tries].max():
        return order
    fitted = canonical_quads((np.array(coarse) + 0.5) / found.scale - 0.5)
    ok = plausible(fitted, found.maps.shape)
    if not ok[0]:
        return order
    maps = found.maps
    feats = features(
        fitted,
        side_support(maps, fitted),
        side_contrast(maps, fitted),
        interior_features(maps, found.density, fitted),
        maps.shape,
    )
    # Nesting among three quads says nothing: each keeps its own among all candidates.
    feats[:, _NESTING] = found.features[tries][:, _NESTING]
    overlap = quad_overlap(found.probability, fitted, maps.shape)
    again = np.where(ok, score(feats) + mask_points(overlap), -np.inf)
    best = int(np.argmax(again))
    if best != 0 and again[best] > again[0] + _RERANK_MARGIN:
        order.insert(0, order.pop(best))
    return order


def to_try(scores: NDArray[np.float64], overlap: NDArray[np.float64] | None = None) -> list[int]:
    """Indices of the candidates to refine, in order: the first few that score above the
    no-document line.  The first in order need not score best (see ``nesting``): one below
    the line is passed over, not taken as the end of the list."""
    passing = scores >= _MIN_SCORE
    if overlap is not None:
        passing |= overlap >= _MASK_SURE
    return [int(k) for k in np.flatnonzero(passing)[:_TRIES]]


def candidates(image: NDArray[np.uint8]) -> Candidates | None:
    """All plausible outlines of the frame, ranked; None when there is none at all."""
    h, w = image.shape[:2]
    factor = max(1, round(max(h, w) / WORK_SIZE))
    small = np.asarray(
        cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA), np.uint8
    )
    maps = edge_maps(small, *_CANNY)
    shape = maps.shape
    min_votes = int(0.06 * min(shape)) + 4
    quads, support = quads_from_lines(hough_lines(maps, min_votes), maps)
    lined = len(quads)
    probability = document_probability(small)
    regions = region_quads(small, maps, [mask_region(probability, shape)])
    if len(regions):
        quads = np.concatenate([quads, regions])
        support = np.concatenate([support, side_support(maps, regions)])
    if len(quads) == 0:
        return None
    s = support[..., 0]
    valid = (((s[:, 0] + s[:, 1]) + s[:, 2]) + s[:, 3]) / 4 >= _MIN_SUPPORT  # mean, by column
    region = np.arange(len(quads)) >= lined
    # A region the map calls document stays, however faint its sides (a pale card on a pale
    # desk); the few region outlines are cheap to measure against the map.
    valid[lined:] |= quad_overlap(probability, quads[lined:], shape) >= _MASK_KEEP
    if not valid.any():
        return None
    quads, support, region = quads[valid], support[valid], region[valid]
    keep = preselect(quads, edge_score(edge_features(quads, support, shape)), region)
    quads, support = canonical_quads(quads[keep]), support[keep]
    density = print_density(maps)
    inner = interior_features(maps, density, quads)
    feats = features(quads, support, side_contrast(maps, quads), inner, shape)
    overlap = quad_overlap(probability, quads, shape)
    scores = score(feats) + mask_points(overlap)
    order = _distinct_best(quads, scores, len(quads))
    first = outermost(quads[order], feats[order], scores[order], maps)
    order.insert(0, order.pop(first))
    # 1280 / 3 is no integer: the working image is 426 wide for 1280, 3.005 pixels each.
    scale = np.array([w / small.shape[1], h / small.shape[0]])
    return Candidates(factor, quads[order], feats[order], scores[order], maps, density,
                      probability, overlap[order], scale)


def mask_points(overlap: NDArray[np.float64]) -> NDArray[np.float64]:
    """What the document map adds to a candidate's score, from its overlap with the map:
    positive where the quad covers what the map calls document, negative where it does not."""
    return _MASK_WEIGHT * (overlap - _MASK_CENTRE)


def mask_region(probability: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.uint8]:
    """The map's document cells as a region mask on the working image."""
    h, w = shape
    big = cv2.resize(probability, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(big >= 0.5, 255, 0).astype(np.uint8)


def preselect(
    quads: NDArray[np.float64], cheap: NDArray[np.float64], region: NDArray[np.bool_]
) -> list[int]:
    """Indices of the candidates that get every cue: the _PRESELECT best on the cheap cues,
    and every region outline besides.

    A patterned desk (a checkerboard cloth, tiles) makes thousands of line quads of high
    side support that fill the cheap cut; the few region outlines are another cue altogether
    and would be crowded out with the document among them.
    """
    keep = _distinct_best(quads, cheap, _PRESELECT)
    taken = set(keep)
    extra = [int(k) for k in np.flatnonzero(region) if int(k) not in taken]
    if not extra:
        return keep
    more = _distinct_best(quads[extra], cheap[extra], len(extra))
    return keep + [extra[k] for k in more]


def _distinct_best(
    quads: NDArray[np.float64], scores: NDArray[np.float64], count: int
) -> list[int]:
    """Indices of the best-scoring quads, skipping near-duplicates of those already taken
    (compared in canonical corner order, whatever order the quads come in)."""
    order = _top(scores, 4 * count)
    canonical = canonical_quads(quads[order])
    q = canonical.reshape(len(order), 8)
    size = np.ptp(canonical, axis=1).max(axis=1)
    # [k, j]: how far quad j strays from quad k at its farthest corner coordinate; built one
    # coordinate at a time (NumPy reduces slowly along a short axis), once for the whole loop.
    gap = np.abs(q[:, 0, None] - q[None, :, 0])
    for c in range(1, 8):
        np.maximum(gap, np.abs(q[:, c, None] - q[None, :, c]), out=gap)
    duplicate = gap <= 0.03 * size[:, None]
    taken = np.zeros(len(q), bool)
    chosen: list[int] = []
    for k in range(len(q)):
        if len(chosen) == count:
            break
        if taken[k]:
            continue
        chosen.append(int(order[k]))
        taken |= duplicate[k]
    return chosen


def _top(scores: NDArray[np.float64], count: int) -> NDArray[np.intp]:
    """Indices of the ``count`` highest scores, highest first, ties in index order: the head
    of a stable argsort of -scores, without sorting the thousands of line quads below it."""
    if len(scores) <= count:
        return np.argsort(-scores, kind="stable")
    threshold = np.partition(-scores, count - 1)[count - 1]
    within = np.flatnonzero(-scores <= threshold)  # the head and every tie at its end
    return within[np.argsort(-scores[within], kind="stable")][:count]


def _check(image: object) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"detect_quad expects a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"detect_quad expects a uint8 BGR image, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detect_quad expects an H x W x 3 BGR image, got shape {image.shape}")
    if min(image.shape[:2]) < 32:
        raise ValueError(f"detect_quad needs an image of at least 32 x 32, got shape {image.shape}")
