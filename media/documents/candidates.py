"""Candidate document quads on the working image, from two independent cues.

* Lines: the strongest Hough lines are paired into roughly parallel pairs, and two pairs of
  different direction make a quad.  A side hidden by a finger or washed out by glare still has
  its line, so occlusion costs support, not the candidate.  Every line's edge support is
  profiled once, so scoring thousands of quads is a few array lookups.
* Regions: Otsu segmentations and closed edge contours, whose convex hulls are cut down to four
  sides.  These catch documents whose sides are too faint or short for the Hough vote.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations

import cv2
import numpy as np
from numpy.typing import NDArray

from .edges import ORIENTATION_BINS, EdgeMaps, normal_bin

Quads = NDArray[np.float64]  # N x 4 x 2

MAX_LINES = 40
PER_BIN = 12  # so that one texture direction (stripes, grain) cannot crowd out the others
_END_TRIM = 0.06  # part of a side at each end that does not count towards its support


def hough_lines(maps: EdgeMaps, min_votes: int) -> NDArray[np.float64]:
    """Up to MAX_LINES distinct (rho, theta) lines, strongest first, PER_BIN at most in
    each orientation band.

    Votes are oriented: each band of line angles only hears the edge pixels whose gradient is
    roughly normal to it.  A plain Hough transform lets print, guilloche waves and wood grain
    vote for any line that happens to cross them, and those outvote a real side.
    """
    found: list[NDArray[np.float64]] = []
    step = math.pi / ORIENTATION_BINS
    for b in range(ORIENTATION_BINS):
        centre = b * step
        got = [
            cv2.HoughLinesWithAccumulator(
                maps.near_bin[b], 1, math.pi / 180, min_votes, min_theta=lo, max_theta=hi
            )
            for lo, hi in _theta_ranges(centre - step / 2, centre + step / 2)
        ]
        parts = [g.reshape(-1, 3).astype(np.float64) for g in got if g is not None]
        if parts:
            band = np.concatenate(parts)
            band = band[np.argsort(-band[:, 2], kind="stable")[: 4 * PER_BIN]]
            found.append(_strongest_distinct(band, PER_BIN))
    if not found:
        return np.empty((0, 2))
    # Each band chose its own lines first: long runs of one texture direction (newsprint,
    # stripes) yield hundreds of strong lines in their band, which must not push a document's
    # sides in other bands out of a global cut.
    return _strongest_distinct(np.concatenate(found), MAX_LINES)[:, :2]


def _strongest_distinct(lines: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    """Up to ``count`` of the (rho, theta, votes) lines, strongest first, none a near-duplicate
    of a stronger one kept."""
    lines = lines[np.argsort(-lines[:, 2], kind="stable")]
    duplicate = _near_duplicates(lines[:, 0], lines[:, 1])
    blocked = np.zeros(len(lines), bool)
    keep: list[int] = []
    for k in range(len(lines)):
        if blocked[k]:
            continue
        keep.append(k)
        if len(keep) == count:
            break
        blocked |= duplicate[k]
    return lines[keep]


def _near_duplicates(rho: NDArray[np.float64], theta: NDArray[np.float64]) -> NDArray[np.bool_]:
    """[i, j]: lines i and j are within 4 degrees and 8 pixels of each other."""
    dt = np.abs(theta[:, None] - theta[None, :])
    across = dt > math.pi / 2  # the same line seen across theta = 0 / pi has rho negated
    dt = np.where(across, math.pi - dt, dt)
    other = np.where(across, -rho[None, :], rho[None, :])
    return np.asarray((dt <= math.radians(4)) & (np.abs(rho[:, None] - other) <= 8), np.bool_)


def _theta_ranges(lo: float, hi: float) -> list[tuple[float, float]]:
    """Split an angle range that wraps around 0 / pi into ranges within [0, pi]."""
    if lo < 0:
        return [(0.0, hi), (math.pi + lo, math.pi)]
    if hi > math.pi:
        return [(lo, math.pi), (0.0, hi - math.pi)]
    return [(lo, hi)]


def quads_from_lines(
    lines: NDArray[np.float64], maps: EdgeMaps
) -> tuple[Quads, NDArray[np.float64]]:
    """All plausible quads made of two line pairs, with their side support (N x 4 x 3, see
    ``_segment_support``)."""
    n = len(lines)
    if n < 4:
        return np.empty((0, 4, 2)), np.empty((0, 4, 3))
    h, w = maps.shape
    rho, theta = lines[:, 0], lines[:, 1]
    normal = np.c_[np.cos(theta), np.sin(theta)]
    homog = np.c_[normal, -rho]
    cumsum, origin, direction, half = _line_profiles(rho, theta, maps)

    i, j = np.triu_indices(n, 1)
    dt = np.abs(theta[i] - theta[j])
    dt = np.minimum(dt, math.pi - dt)
    centre = np.array([w / 2, h / 2, 1.0])
    same_way = np.sign(np.einsum("nc,nc->n", normal[i], normal[j]))
    gap = np.abs(homog[i] @ centre - same_way * (homog[j] @ centre))
    parallel = (dt < math.radians(40)) & (gap > 0.08 * min(w, h))
    pi, pj = i[parallel], j[parallel]
    if len(pi) < 2:
        return np.empty((0, 4, 2)), np.empty((0, 4, 3))
    mean_dir = _pair_direction(theta[pi], theta[pj])
    a, b = np.triu_indices(len(pi), 1)
    d = np.abs(mean_dir[a] - mean_dir[b])
    d = np.minimum(d, math.pi - d)
    # Tens of thousands of pairs of pairs: each test below runs only on those that passed the
    # ones before, the cheapest (directions apart) first.
    across = d > math.radians(35)
    a, b = a[across], b[across]
    # Where every two lines meet, whether that is near the image, and how far along each.
    cross = np.cross(homog[:, None, :], homog[None, :, :])
    z = np.where(np.abs(cross[..., 2]) < 1e-9, 1e-9, cross[..., 2])
    meet = cross[..., :2] / z[..., None]
    margin = 0.03 * max(w, h)
    near = (meet[..., 0] > -margin) & (meet[..., 0] < w + margin)
    near &= (meet[..., 1] > -margin) & (meet[..., 1] < h + margin)
    along = np.einsum("ijc,ic->ij", meet - origin[:, None, :], direction)  # on line i
    p1, p2, q1, q2 = pi[a], pj[a], pi[b], pj[b]
    ok = (p1 != q1) & (p1 != q2) & (p2 != q1) & (p2 != q2)
    p1, p2, q1, q2 = p1[ok], p2[ok], q1[ok], q2[ok]
    flat = near.ravel()  # one-dimensional lookups: [i * n + j] is near[i, j]
    ok = flat[p1 * n + q1] & flat[p1 * n + q2] & flat[p2 * n + q1] & flat[p2 * n + q2]
    p1, p2, q1, q2 = p1[ok], p2[ok], q1[ok], q2[ok]
    # Sides in order: P1, Q2, P2, Q1; corner k is where side k - 1 meets side k.
    sides = np.stack([p1, q2, p2, q1], axis=1)
    before = np.stack([q1, p1, q2, p2], axis=1)
    after = np.stack([q2, p2, q1, p1], axis=1)
    corners = meet.reshape(-1, 2)[before * n + sides]
    valid = plausible(corners, (h, w), near_image=True)  # every corner is ``near``
    corners, sides = corners[valid], sides[valid]
    before, after = before[valid], after[valid]
    # Support of side k: its line's profile between corner k and corner k + 1.
    along = along.ravel()
    t0 = along[sides * n + before]
    t1 = along[sides * n + after]
    lo = np.minimum(t0, t1)
    hi = np.maximum(t0, t1)
    return corners, _segment_support(cumsum, sides, lo + half, hi + half)


def _segment_support(
    cumsum: NDArray[np.int32],
    sides: NDArray[np.intp],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Support of each side between ``lo`` and ``hi`` (profile indices), and beyond its ends.

    ``cumsum`` is 3 x lines x samples as from ``_line_profiles``.  Returns N x 4 x 3: [..., 0]
    the trimmed side, [..., 1] the larger of the two stretches past its corners, [..., 2] the
    share of the trimmed side whose edges step the other way than most of its edges.  A
    document's side stops at its corners; a line of the background, a table rule or the far
    side of a strip runs on.  A document's side steps one way along its length; a row of a
    checkerboard steps up and down in turn.
    """
    top = cumsum.shape[2] - 1
    span = hi - lo
    trim = span * _END_TRIM
    reach = np.maximum(0.15 * span, 6.0)
    gap = 3.0
    row = sides * cumsum.shape[2]  # flat lookups: [i * columns + j] is cumsum[., i, j]
    first = np.clip(np.round(lo + trim), 0, top).astype(np.intp)
    last = np.clip(np.round(hi - trim), 0, top).astype(np.intp)
    count = np.maximum(np.round(hi - trim) - np.round(lo + trim), 1)
    rise, fall, either = (c.ravel() for c in cumsum)
    inner = (either[row + last] - either[row + first]) / count
    one_way = np.maximum(rise[row + last] - rise[row + first], fall[row + last] - fall[row + first])
    other_way = inner - one_way / count
    # The stretches before and after the side, in one pass of lookups.
    starts = np.round(np.stack([lo - gap - reach, hi + gap]))
    ends = np.round(np.stack([lo - gap, hi + gap + reach]))
    hits = either[row + np.clip(ends, 0, top).astype(np.intp)]
    hits = hits - either[row + np.clip(starts, 0, top).astype(np.intp)]
    before, after = hits / np.maximum(ends - starts, 1)
    return np.stack([inner, np.maximum(before, after), other_way], axis=-1)


def _pair_direction(t1: NDArray[np.float64], t2: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean of two line angles modulo pi."""
    c = np.cos(2 * t1) + np.cos(2 * t2)
    s = np.sin(2 * t1) + np.sin(2 * t2)
    return np.asarray(np.arctan2(s, c) / 2 % math.pi, np.float64)


def _line_profiles(
    rho: NDArray[np.float64], theta: NDArray[np.float64], maps: EdgeMaps
) -> tuple[NDArray[np.int32], NDArray[np.float64], NDArray[np.float64], int]:
    """Cumulative edge support along each line, sampled at unit steps: 3 x lines x samples,
    edges of rising, of falling and of either polarity."""
    h, w = maps.shape
    half = math.ceil(math.hypot(w, h))
    normal = np.c_[np.cos(theta), np.sin(theta)]
    origin = normal * rho[:, None]
    direction = np.c_[-normal[:, 1], normal[:, 0]]
    t = np.arange(-half, half + 1, dtype=np.float64)
    x = np.round(origin[:, 0:1] + direction[:, 0:1] * t).astype(np.intp)
    y = np.round(origin[:, 1:2] + direction[:, 1:2] * t).astype(np.intp)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    nb = normal_bin(direction)[:, None]
    ys, xs = np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)
    rise, fall = maps.polarities(nb, ys, xs)
    cumsum = np.zeros((3, len(rho), 2 * half + 2), np.int32)
    for k, hit in enumerate((rise & inside, fall & inside, (rise | fall) & inside)):
        np.cumsum(hit, axis=1, out=cumsum[k, :, 1:])
    return cumsum, origin, direction, half


def plausible(
    corners: Quads, shape: tuple[int, int], near_image: bool = False
) -> NDArray[np.bool_]:
    """Convex, mostly inside the image, not tiny, no needle-sharp corners.  ``near_image``:
    the caller has checked already that every corner lies within the image's margin.

    Line quads come by the ten thousand: every test runs on one corner or side at a time
    (columns of N), since NumPy reduces slowly along a short axis of 4.
    """
    h, w = shape
    q = np.asarray(corners, np.float64)
    if near_image:
        result = np.ones(len(q), bool)
    else:
        margin = 0.03 * max(w, h)
        x, y = q[..., 0], q[..., 1]
        inside = (x > -margin) & (x < w + margin) & (y > -margin) & (y < h + margin)
        result = inside[:, 0] & inside[:, 1] & inside[:, 2] & inside[:, 3]
        q = q[result]  # spare the outliers the rest
    xs = [q[:, k, 0] for k in range(4)]
    ys = [q[:, k, 1] for k in range(4)]
    ex = [xs[(k + 1) % 4] - xs[k] for k in range(4)]
    ey = [ys[(k + 1) % 4] - ys[k] for k in range(4)]
    # cross[k]: turn from side k to side k + 1, at corner k + 1.
    cross = [ex[k] * ey[(k + 1) % 4] - ey[k] * ex[(k + 1) % 4] for k in range(4)]
    length = [np.hypot(ex[k], ey[k]) for k in range(4)]
    min_sine = math.sin(math.radians(28))
    min_length = 0.06 * min(w, h)
    positive = negative = ok = np.ones(len(q), bool)
    for k in range(4):
        positive = positive & (cross[k] > 0)
        negative = negative & (cross[k] < 0)
        sine = np.abs(cross[k]) / np.maximum(length[k] * length[(k + 1) % 4], 1e-9)
        ok = ok & (sine > min_sine) & (length[k] > min_length)
    # Shoelace: twice the area is the sum of cross products of consecutive corners.
    twice = xs[0] * ey[0] - ys[0] * ex[0]
    for k in range(1, 4):
        twice = twice + (xs[k] * ey[k] - ys[k] * ex[k])
    result[result] = (positive | negative) & ok & (np.abs(twice) / 2 > 0.03 * w * h)
    return np.asarray(result, np.bool_)


def region_quads(
    small: NDArray[np.uint8], maps: EdgeMaps, extra: Sequence[NDArray[np.uint8]] = ()
) -> Quads:
    """Quads around large regions: Otsu on lightness and saturation, closed edges, and the
    ``extra`` masks (255 inside) of the working image's size."""
    h, w = maps.shape
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    grey = cv2.GaussianBlur(hsv[..., 2], (5, 5), 0)
    sat = cv2.GaussianBlur(hsv[..., 1], (5, 5), 0)
    masks = []
    for channel in (grey, sat):
        _, m = cv2.threshold(channel, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        masks += [m, 255 - m]
    closed = cv2.dilate(maps.edges, np.ones((3, 3), np.uint8))
    masks.append(255 - closed)
    masks.extend(extra)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    out: list[NDArray[np.float64]] = []
    min_area = 0.03 * w * h
    for m in masks:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contours = sorted(contours, key=cv2.contourArea, reverse=True)[:3]
        for c in contours:
            if cv2.contourArea(c) < min_area:
                break
            quad = hull_to_quad(cv2.convexHull(c).reshape(-1, 2).astype(np.float64))
            if quad is not None:
                out.append(quad)
                # A hand or a pen merged with the document bulges out of its outline: the
                # hull's cut-down quad then takes a corner off or swallows the hand, while
                # the document's own sides are still long straight runs of the contour.
                if cv2.contourArea(c) < _FILLED * abs(_signed([(x, y) for x, y in quad])) / 2:
                    fitted = contour_to_quad(c.reshape(-1, 2).astype(np.float64))
                    if fitted is not None:
                        out.append(fitted)
    if not out:
        return np.empty((0, 4, 2))
    quads = np.array(out)
    return quads[plausible(quads, (h, w))]


_FILLED = 0.93  # a region filling less of its hull's quad than this may have a bulge
_FIT_SIDES = 10  # longest straight runs of a contour tried as sides, four at a time


def contour_to_quad(contour: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Four sides fitted to a region's outline, not to its convex hull.

    The outline is simplified to straight runs; every four of its longest runs, in their
    order along the outline, are extended to meet, and the quad that the most outline length
    lies on wins.  A hand reaching over a side adds runs of its own but leaves the sides'
    runs in place, so the document's four still explain more of the outline than any set
    that includes the hand's.  None when the outline has no four such runs.
    """
    pts = contour.reshape(-1, 2).astype(np.float32)
    perimeter = cv2.arcLength(pts, True)
    poly = cv2.approxPolyDP(pts, 0.01 * perimeter, True).reshape(-1, 2).astype(np.float64)
    n = len(poly)
    if n < 5:
        return None
    start, end = poly, np.roll(poly, -1, axis=0)
    length = np.hypot(*(end - start).T)
    longest = np.argsort(-length, kind="stable")[:_FIT_SIDES]
    longest = np.sort(longest[length[longest] >= 0.06 * perimeter])
    if len(longest) < 4:
        return None
    combos = np.array(list(combinations(longest.tolist(), 4)), np.intp)  # in outline order
    a, b = start[combos], end[combos]  # C x 4 x 2
    homog = np.cross(np.dstack([a, np.ones(a.shape[:2])]), np.dstack([b, np.ones(b.shape[:2])]))
    meet = np.cross(homog, np.roll(homog, -1, axis=1))  # side k meets side k + 1
    z = meet[..., 2]
    parallel = np.abs(z) < 1e-9
    corners = meet[..., :2] / np.where(parallel, 1.0, z)[..., None]
    corners = np.roll(corners, 1, axis=1)  # corner k: where side k - 1 meets side k
    # Outline length on each quad: the runs whose two ends lie within tol of its boundary.
    tol = 0.015 * perimeter
    near_start = _boundary_distance(corners, start) <= tol  # C x n
    near_end = np.roll(near_start, -1, axis=1)
    on = (near_start & near_end) @ length
    # Only convex quads whose corners stay near the outline's box: a hidden corner may lie
    # outside the region, not far beyond it.
    lo, hi = poly.min(axis=0) - 0.05 * perimeter, poly.max(axis=0) + 0.05 * perimeter
    inside = ((corners >= lo) & (corners <= hi)).all(axis=(1, 2))
    edge = np.roll(corners, -1, axis=1) - corners
    turn = edge[..., 0] * np.roll(edge, -1, axis=1)[..., 1]
    turn = turn - edge[..., 1] * np.roll(edge, -1, axis=1)[..., 0]
    convex = (turn > 0).all(axis=1) | (turn < 0).all(axis=1)
    on[parallel.any(axis=1) | ~inside | ~convex] = -1.0
    best = int(np.argmax(on))
    # Most of the quad's own outline must be seen: a hidden corner, not a hidden side.
    if on[best] < 0.7 * np.hypot(*(np.roll(corners[best], -1, axis=0) - corners[best]).T).sum():
        return None
    return np.asarray(corners[best], np.float64)


def _boundary_distance(
    quads: NDArray[np.float64], points: NDArray[np.float64]
) -> NDArray[np.float64]:
    """[c, p]: distance from point p to the nearest side (segment) of quad c."""
    a = quads[:, :, None, :]  # C x 4 x 1 x 2
    d = np.roll(quads, -1, axis=1)[:, :, None, :] - a
    rel = points[None, None, :, :] - a  # C x 4 x P x 2
    t = np.clip((rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-9), 0.0, 1.0)
    gap = rel - t[..., None] * d
    return np.asarray(np.hypot(gap[..., 0], gap[..., 1]).min(axis=1), np.float64)


def hull_to_quad(hull: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Cut a convex polygon down to four sides, each time dropping the side whose removal
    (extending its neighbours to meet) adds the least area.  Rounded and clipped corners
    disappear first, which is exactly what a card's outline needs."""
    eps = 0.004 * cv2.arcLength(hull.astype(np.float32), True)
    poly = cv2.approxPolyDP(hull.astype(np.float32), eps, True).reshape(-1, 2).astype(np.float64)
    # A scalar loop over a dozen points: plain floats cost a fraction of NumPy scalars.
    points = [(float(x), float(y)) for x, y in poly]
    signed = _signed(points)
    if signed == 0 or len(points) < 4:
        return None
    if signed < 0:
        points.reverse()
    while len(points) > 4:
        n = len(points)
        best, best_cost, best_pt = -1, math.inf, (0.0, 0.0)
        for k in range(n):
            p1, p2 = points[k], points[(k + 1) % n]
            x = _cross_lines(points[k - 1], p1, p2, points[(k + 2) % n])
            if x is None:
                continue
            cost = abs(_tri(p1, x, p2))
            if cost < best_cost:
                best, best_cost, best_pt = k, cost, x
        if best < 0:
            return None
        points[best] = best_pt
        del points[(best + 1) % n]
    return np.array(points, np.float64)


def _signed(points: list[tuple[float, float]]) -> float:
    """Twice the signed area of a polygon (shoelace)."""
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True):
        total += x0 * y1 - y0 * x1
    return total


def _tri(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    return ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) / 2


def _cross_lines(
    p0: tuple[float, float],
    p1: tuple[float, float],
    p2: tuple[float, float],
    p3: tuple[float, float],
) -> tuple[float, float] | None:
    """Where the line p0-p1 extended forward meets the line p3-p2 extended backward."""
    d1x, d1y = p1[0] - p0[0], p1[1] - p0[1]
    d2x, d2y = p2[0] - p3[0], p2[1] - p3[1]
    den = d1x * d2y - d1y * d2x
    if abs(den) < 1e-9:
        return None
    s = ((p3[0] - p0[0]) * d2y - (p3[1] - p0[1]) * d2x) / den
    t = ((p3[0] - p0[0]) * d1y - (p3[1] - p0[1]) * d1x) / den
    if s < 1 or t < 1:  # the neighbours diverge: cutting here would not enclose the hull
        return None
    return p0[0] + d1x * s, p0[1] + d1y * s
