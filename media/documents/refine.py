"""Sub-pixel refinement of a quad's sides on the full-resolution image.

Each side is sampled across its normal; along every profile the colour change is projected on
the side's own inside-to-outside colour difference, so the step that separates document from
background wins over print and over edges of the wrong polarity.  The peak of that derivative,
interpolated to a fraction of a pixel, gives one edge point; a line is fitted to the points of
a side with RANSAC then least squares, so a finger, a pen or a glare blob over part of a side
is outvoted.  Corners are where the fitted lines meet, which also places a rounded card corner
where the sides would meet.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

_END_TRIM = 0.07  # sides are sampled away from corners (rounded cards, fingers at corners)


@dataclass(frozen=True)
class Refined:
    quad: NDArray[np.float64]  # 4 x 2
    # Per side, the fraction of samples on the fitted line: how much of each side was seen
    # (a finger or glare over an edge lowers it), for quality checks.
    inliers: NDArray[np.float64]


def refine_quad(
    image: NDArray[np.uint8],
    quad: NDArray[np.float64],
    radius: int,
    tolerance: float,
    seed: int = 0,
) -> Refined:
    """Refit the four sides; ``radius`` is how far (pixels) to look across each side and
    ``tolerance`` how far an edge point may lie from its side's line and still count."""
    q = np.asarray(quad, np.float64)
    centre = q.mean(axis=0)
    rng = np.random.default_rng(seed)
    lines: list[tuple[float, float, float]] = []
    inliers = np.zeros(4)
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    for k in range(4):
        a, b = q[k], q[(k + 1) % 4]
        side = b - a
        length = math.hypot(side[0], side[1])
        if length < 4:
            lines.append(_homogeneous(a, side))
            continue
        normal = np.array([-side[1], side[0]]) / length
        if np.dot(normal, (a + b) / 2 - centre) < 0:
            normal = -normal
        count = int(min(max(length / 5, 16), 72))
        base = a + side * _spread(count)[:, None]
        xs = (base[:, 0:1] + normal[0] * offsets).astype(np.float32)
        ys = (base[:, 1:2] + normal[1] * offsets).astype(np.float32)
        prof = np.asarray(
            cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            np.float32,
        )
        pts = _edge_points(prof, base, normal, radius)
        if len(pts) < 6:
            lines.append(_homogeneous(a, side))
            continue
        fit = _fit_line(pts, rng, tolerance, side / length, min(1.0, 2.0 * radius / length))
        if fit is None:
            lines.append(_homogeneous(a, side))
            continue
        line, mask = fit
        lines.append(line)
        inliers[k] = mask.sum() / count
    corners = []
    for k in range(4):
        x = _cross(lines[k - 1], lines[k])
        if abs(x[2]) < 1e-12:
            return Refined(q, np.zeros(4))
        corners.append((x[0] / x[2], x[1] / x[2]))
    return Refined(np.array(corners), inliers)


@functools.cache
def _spread(count: int) -> NDArray[np.float64]:
    """Where along a side its ``count`` profiles lie (shared, read-only)."""
    t = np.linspace(_END_TRIM, 1 - _END_TRIM, count)
    t.flags.writeable = False
    return t


def _cross(
    p: tuple[float, float, float], q: tuple[float, float, float]
) -> tuple[float, float, float]:
    """Cross product of two homogeneous 3-vectors: the line through two points, or the point
    where two lines meet (plain floats: np.cross costs tens of microseconds on 3-vectors)."""
    return (p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0])


def _homogeneous(
    point: NDArray[np.float64], direction: NDArray[np.float64]
) -> tuple[float, float, float]:
    x, y = float(point[0]), float(point[1])
    return _cross((x, y, 1.0), (x + float(direction[0]), y + float(direction[1]), 1.0))


def _edge_points(
    prof: NDArray[np.float32], base: NDArray[np.float64], normal: NDArray[np.float64], radius: int
) -> NDArray[np.float64]:
    """Sub-pixel edge points, one per profile where the in-to-out colour step is steepest and
    clear of the noise."""
    inside = prof[:, : radius - 1].reshape(-1, 3).mean(axis=0)
    outside = prof[:, radius + 2 :].reshape(-1, 3).mean(axis=0)
    step = outside - inside
    norm = float(np.linalg.norm(step))
    if norm < 3.0:  # no colour direction to speak of: any step will do
        deriv = np.linalg.norm(prof[:, 2:] - prof[:, :-2], axis=2) / 2.0
    else:
        proj = prof @ (step / norm)
        deriv = (proj[:, 2:] - proj[:, :-2]) / 2.0
    n, m = deriv.shape
    idx = np.argmax(deriv, axis=1)
    rows = np.arange(n)
    peak = deriv[rows, idx]
    left = deriv[rows, np.maximum(idx - 1, 0)]
    right = deriv[rows, np.minimum(idx + 1, m - 1)]
    denom = left - 2 * peak + right
    frac = np.where(np.abs(denom) > 1e-6, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0)
    frac = np.minimum(np.maximum(frac, -0.5), 0.5)
    interior = (idx > 0) & (idx < m - 1)
    keep = interior & (peak > max(2.0, 0.3 * _median(peak)))
    offset = idx + 1 + frac - radius  # deriv index i is centred on profile sample i + 1
    pts = base + offset[:, None] * normal
    return np.asarray(pts[keep], np.float64)


def _fit_line(
    pts: NDArray[np.float64],
    rng: np.random.Generator,
    tol: float,
    direction: NDArray[np.float64],
    max_sine: float,
) -> tuple[tuple[float, float, float], NDArray[np.bool_]] | None:
    """RANSAC over point pairs, then total least squares on the inliers.

    Only lines within ``max_sine`` of the prior ``direction`` (unit vector) are considered:
    the side was searched in a band around its prior, and a line leaving the band is the edge
    of a finger or a shadow, not of the document.  None when no such line has support.
    """
    n = len(pts)
    trials = min(64, n * (n - 1) // 2)
    i = rng.integers(0, n, trials)
    j = rng.integers(0, n, trials)
    j = np.where(i == j, (j + 1) % n, j)
    p, q = pts[i], pts[j]
    d = q - p
    norm = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)
    nx, ny = -d[:, 1] / norm, d[:, 0] / norm
    aligned = np.abs(nx * direction[0] + ny * direction[1]) <= max_sine
    if not aligned.any():
        return None
    dist = np.abs(
        (pts[None, :, 0] - p[:, None, 0]) * nx[:, None]
        + (pts[None, :, 1] - p[:, None, 1]) * ny[:, None]
    )
    counts = np.where(aligned, (dist < tol).sum(axis=1), -1)
    best = int(np.argmax(counts))
    mask = dist[best] < tol
    if mask.sum() < 2:
        return None
    line = _tls(pts[mask])
    for _ in range(2):
        res = np.abs(pts @ line[:2] + line[2])
        mask = res < tol
        if mask.sum() < 2:
            break
        line = _tls(pts[mask])
    if abs(line[0] * direction[0] + line[1] * direction[1]) > max_sine:
        return None
    return (float(line[0]), float(line[1]), float(line[2])), mask


def _tls(pts: NDArray[np.float64]) -> NDArray[np.float64]:
    """Total least squares line (a, b, c), a^2 + b^2 = 1: the normal is the direction of least
    spread, from the 2 x 2 scatter matrix in closed form."""
    mean = pts.mean(axis=0)
    cx, cy = (pts - mean).T
    sxx, syy, sxy = float(cx @ cx), float(cy @ cy), float(cx @ cy)
    along = 0.5 * math.atan2(2.0 * sxy, sxx - syy)  # direction of most spread
    nx, ny = -math.sin(along), math.cos(along)
    return np.array([nx, ny, -(nx * float(mean[0]) + ny * float(mean[1]))])


def _median(values: NDArray[np.floating]) -> float:
    """np.median of a non-empty 1-d array without its generic machinery (a tenth of the cost
    on a few dozen values)."""
    n = len(values)
    half = n // 2
    if n % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2)


def search_radius(scale: float) -> int:
    """Profile half-length for a candidate found at ``scale`` full pixels per working pixel."""
    return math.ceil(2.5 * scale) + 2
