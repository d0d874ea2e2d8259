"""A rim around the found outline: the cover edge of a booklet around its pages.

The sides found by ``refine`` sit on the steepest colour step, which on a household-register
booklet is the white page against its dark cover, a few millimetres inside the booklet's real
outline.  The cover shows as a band of its own uniform colour just outside every side, ending
at a second step, as sharp as the first, into the desk.  A cast shadow also darkens a band
next to the paper, but on two sides at most and with a soft outer edge, and a glare or finger
is outvoted by taking the median along each side.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from .geometry import polygon_area

_INSIDE = 3  # pixels sampled inside each side
_SAMPLES = 16  # profiles per half side
_MAX_CHROMA_GAP = 0.12
_HALVES = (np.linspace(0.12, 0.46, _SAMPLES), np.linspace(0.54, 0.88, _SAMPLES))

Colour = NDArray[np.float64]
_Step = tuple[float, Colour, Colour]  # outer edge's offset, rim colour, colour beyond
_Rim = tuple[float, float, Colour]  # outer edge's offset on each half side, rim colour


def widen_to_rim(image: NDArray[np.uint8], quad: NDArray[np.float64]) -> NDArray[np.float64]:
    """The quad with each side moved out to the rim's outer edge when two sides or more show
    a rim of one colour; otherwise the quad unchanged.

    A finger or glare may hide the rim on a side, and motion blur merges its two steps on the
    two sides across the motion; those sides move out by the others' width.
    """
    q = np.asarray(quad, np.float64)
    area = polygon_area(q)
    reach = min(80, math.ceil(0.045 * math.sqrt(area)) + 4)
    offsets = np.arange(-_INSIDE, reach + 1, dtype=np.float64)
    centre = q.mean(axis=0)
    profiles = _half_side_profiles(image, q, centre, offsets)
    found: list[_Rim | None] = []
    for k in range(4):
        halves = []
        for profile in profiles[2 * k : 2 * k + 2]:
            step = _outer_step(profile)
            halves.append(None if step is None or _shadow_like(*step[1:]) else step)
        found.append(_side_rim(halves[0], halves[1]))
    seen = [f for f in found if f is not None]
    if len(seen) < 2:
        return q
    typical = np.median([f[2] for f in seen], axis=0)  # sides of another colour drop out
    found = [
        f if f is not None and _chroma_gap(f[2], typical) <= _MAX_CHROMA_GAP else None
        for f in found
    ]
    seen = [f for f in found if f is not None]
    if len(seen) < 2:
        return q
    colours = np.array([f[2] for f in seen])
    widths = np.array([(f[0] + f[1]) / 2 for f in seen])
    if widths.max() > 2.5 * widths.min() + 1.5:
        return q
    width, rim = float(np.median(widths)), np.median(colours, axis=0)
    lines = []
    for k in range(4):
        a, b = q[k], q[(k + 1) % 4]
        side = b - a
        normal = _outward(a, b, centre)
        f = found[k]
        if f is not None:
            near, far = f[0], f[1]
        elif _rim_inside(image, a, side, normal, width, rim):
            near = far = 0.0
        else:
            near = far = width
        # The half-side offsets were measured at t = 0.29 and 0.71; extrapolate to the corners.
        pa = a + side * 0.29 + normal * near
        pb = a + side * 0.71 + normal * far
        lines.append(np.cross([pa[0], pa[1], 1.0], [pb[0], pb[1], 1.0]))
    corners = []
    for k in range(4):
        x = np.cross(lines[k - 1], lines[k])
        if abs(x[2]) < 1e-12:
            return q
        corners.append(x[:2] / x[2])
    return np.array(corners)


def _side_rim(first: _Step | None, second: _Step | None) -> _Rim | None:
    """One side's rim from its two halves' (either may be hidden), None when they disagree."""
    if first is None or second is None:
        one = first or second
        return None if one is None else (one[0], one[0], one[1])
    if abs(first[0] - second[0]) > 0.5 * max(first[0], second[0]) + 2:
        return None
    if _chroma_gap(first[1], second[1]) > _MAX_CHROMA_GAP:
        return None
    return first[0], second[0], (first[1] + second[1]) / 2


def _outward(
    a: NDArray[np.float64], b: NDArray[np.float64], centre: NDArray[np.float64]
) -> NDArray[np.float64]:
    side = b - a
    normal = np.array([-side[1], side[0]]) / max(float(np.hypot(*side)), 1e-9)
    return normal if np.dot(normal, (a + b) / 2 - centre) >= 0 else -normal


def _rim_inside(
    image: NDArray[np.uint8],
    a: NDArray[np.float64],
    side: NDArray[np.float64],
    normal: NDArray[np.float64],
    width: float,
    rim: NDArray[np.float64],
) -> bool:
    """Whether a side without a rim beyond it has one just inside: it is the outer edge
    already (where the cover, not the page, met the strongest step)."""
    depth = max(1, round(0.8 * width))
    offsets = np.arange(-depth, 0, dtype=np.float64)
    profile = _median_profile(image, a, side, normal, (0.12, 0.88), offsets)
    return _chroma_gap(np.median(profile, axis=0), rim) < _MAX_CHROMA_GAP


def _chroma_gap(first: NDArray[np.float64], second: NDArray[np.float64]) -> float:
    """Difference of two colours' proportions of B, G and R, blind to shading and glare."""
    return float(np.abs(first / (first.sum() + 30.0) - second / (second.sum() + 30.0)).sum())


def _shadow_like(rim: NDArray[np.float64], out: NDArray[np.float64]) -> bool:
    """A band of the background's own colour, only darker: a cast shadow."""
    return _chroma_gap(rim, out) < 0.08 and rim.sum() < out.sum()


def _half_side_profiles(
    image: NDArray[np.uint8],
    q: NDArray[np.float64],
    centre: NDArray[np.float64],
    offsets: NDArray[np.float64],
) -> NDArray[np.float64]:
    """``_median_profile`` of the two halves (t 0.12-0.46 and 0.54-0.88) of every side, side by
    side, in one remap: 8 x len(offsets) x 3, first and second half of side 0, then side 1..."""
    xs, ys = [], []
    for k in range(4):
        a, b = q[k], q[(k + 1) % 4]
        normal = _outward(a, b, centre)
        for t in _HALVES:
            base = a + (b - a) * t[:, None]
            xs.append((base[:, 0:1] + normal[0] * offsets).astype(np.float32))
            ys.append((base[:, 1:2] + normal[1] * offsets).astype(np.float32))
    return _median_rows(image, np.concatenate(xs), np.concatenate(ys))


def _median_profile(
    image: NDArray[np.uint8],
    a: NDArray[np.float64],
    side: NDArray[np.float64],
    normal: NDArray[np.float64],
    span: tuple[float, float],
    offsets: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Colour across the side at ``offsets`` (pixels outward), median along the stretch
    ``span`` of the side: len(offsets) x 3."""
    t = np.linspace(span[0], span[1], _SAMPLES)
    base = a + side * t[:, None]
    xs = (base[:, 0:1] + normal[0] * offsets).astype(np.float32)
    ys = (base[:, 1:2] + normal[1] * offsets).astype(np.float32)
    return np.asarray(_median_rows(image, xs, ys)[0], np.float64)


def _median_rows(
    image: NDArray[np.uint8], xs: NDArray[np.float32], ys: NDArray[np.float32]
) -> NDArray[np.float64]:
    """The image sampled at (xs, ys), rows taken _SAMPLES at a time, and the median of each
    group of rows: (rows / _SAMPLES) x columns x 3.  The samples are bytes: sorting them is
    far cheaper than np.median, and the middle two's mean is the same number."""
    prof = np.asarray(
        cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.uint8
    )
    groups = prof.reshape(-1, _SAMPLES, *prof.shape[1:])
    ranked = np.sort(groups, axis=1)
    middle = ranked[:, _SAMPLES // 2 - 1 : _SAMPLES // 2 + 1].astype(np.float64)
    return np.asarray((middle[:, 0] + middle[:, 1]) / 2, np.float64)


def _outer_step(profile: NDArray[np.float64]) -> _Step | None:
    """Offset of the rim's outer edge, the rim's colour and the colour beyond, or None when
    the profile shows the first step only.

    The rim must hold a colour of its own between two steps, and the outer step must be about
    as sharp for its height as the first (the optics blur both alike; a shadow's edge is soft).
    """
    grad = np.linalg.norm(profile[2:] - profile[:-2], axis=1) / 2.0  # index i: offset i+1-_INSIDE
    zero = _INSIDE - 1
    first = float(grad[max(zero - 1, 0) : zero + 2].max())
    if first < 6.0:
        return None
    page = profile[: _INSIDE - 1].mean(axis=0)
    best, best_value = -1, 0.0
    values = grad.tolist()  # the scan below is scalar: plain floats are far cheaper
    for i in range(zero + 2, len(values) - 1):
        g = values[i]
        if g < values[i - 1] or g < values[i + 1] or g < 5.0:
            continue
        if min(values[zero + 1 : i]) > 0.8 * g:  # no dip: one blurred step, not two
            continue
        if g > best_value:
            best, best_value = i, g
    if best < 0:
        return None
    band = profile[_INSIDE + 1 : best + 1]  # offsets 1 .. best - _INSIDE
    rim = np.median(band, axis=0)
    out = np.median(profile[min(best + 4, len(profile) - 1) :], axis=0)
    inner_height = float(np.linalg.norm(rim - page))
    outer_height = float(np.linalg.norm(out - rim))
    if inner_height < 0.66 * first or outer_height < 10.0:
        return None
    if best_value / outer_height < 0.5 * first / inner_height:
        return None
    if band.std(axis=0).max() > 0.35 * outer_height:
        return None
    g0, g1, g2 = grad[best - 1], grad[best], grad[best + 1]
    denom = g0 - 2 * g1 + g2
    frac = 0.5 * (g0 - g2) / denom if abs(denom) > 1e-9 else 0.0
    return best + 1 - _INSIDE + float(np.clip(frac, -0.5, 0.5)), rim, out
