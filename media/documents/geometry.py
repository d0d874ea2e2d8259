"""Pure quadrilateral geometry shared by detection, rectification and quality checks.

Quads are 4 x 2 arrays of (x, y) in image pixel coordinates, y pointing down.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Points = NDArray[np.floating]


def order_corners(points: Points) -> NDArray[np.float32]:
    """Return the four points as top-left, top-right, bottom-right, bottom-left.

    The points are sorted clockwise (as seen on screen) around their centroid; the first is
    the start of the side that runs most nearly left-to-right, so a document rotated by less
    than 45 degrees keeps its own top-left first, and one rotated by 90 degrees starts at the
    corner that is top-left on screen.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if pts.shape != (4, 2):
        raise ValueError(f"order_corners needs 4 points, got {pts.shape[0]}")
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles, kind="stable")]
    sides = np.roll(pts, -1, axis=0) - pts
    lengths = np.maximum(np.hypot(sides[:, 0], sides[:, 1]), 1e-12)
    rightward = sides[:, 0] / lengths
    # On a tie (45 degrees) prefer the side whose start is higher up.
    start = int(np.argmax(np.round(rightward, 9) - 1e-12 * pts[:, 1]))
    return np.roll(pts, -start, axis=0).astype(np.float32)


def canonical_quads(quads: Points) -> NDArray[np.float64]:
    """N x 4 x 2 quads with one winding and the corner of least x + y first, so that the same
    outline found twice has the same corner order (for comparing candidates, not for output)."""
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    x = [q[:, k, 0] for k in range(4)]  # by column: NumPy reduces slowly along an axis of 4
    y = [q[:, k, 1] for k in range(4)]
    signed = x[0] * y[1] - y[0] * x[1]
    for k in range(1, 4):
        signed = signed + (x[k] * y[(k + 1) % 4] - y[k] * x[(k + 1) % 4])
    q = np.where((signed < 0)[:, None, None], q[:, ::-1], q)
    start = np.argmin(q[..., 0] + q[..., 1], axis=1)
    idx = (start[:, None] + np.arange(4)) % 4
    return np.asarray(np.take_along_axis(q, idx[..., None], axis=1), np.float64)


def polygon_area(polygon: Points) -> float:
    """Unsigned shoelace area of a simple polygon."""
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def clip_polygon(subject: Points, clip: Points) -> NDArray[np.float64]:
    """Sutherland-Hodgman: the part of ``subject`` inside the convex polygon ``clip``.

    ``subject`` may be any simple polygon; the area of the result is exact even where the
    output has degenerate zero-width bridges.
    """
    out = np.asarray(subject, np.float64).reshape(-1, 2)
    c = np.asarray(clip, np.float64).reshape(-1, 2)
    if _signed_area(c) < 0:
        c = c[::-1]
    for i in range(len(c)):
        if len(out) == 0:
            break
        a, b = c[i], c[(i + 1) % len(c)]
        edge = b - a
        side = edge[0] * (out[:, 1] - a[1]) - edge[1] * (out[:, 0] - a[0])
        result: list[NDArray[np.float64]] = []
        for j in range(len(out)):
            p, q = out[j], out[(j + 1) % len(out)]
            sp, sq = side[j], side[(j + 1) % len(out)]
            if sp >= 0:
                result.append(p)
            if (sp >= 0) != (sq >= 0):
                result.append(p + (q - p) * (sp / (sp - sq)))
        out = np.array(result, np.float64).reshape(-1, 2)
    return out


def _signed_area(p: NDArray[np.float64]) -> float:
    x, y = p[:, 0], p[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0


def polygon_iou(polygon: Points, convex: Points) -> float:
    """Intersection over union of a simple polygon and a convex polygon."""
    inter = polygon_area(clip_polygon(polygon, convex))
    union = polygon_area(polygon) + polygon_area(convex) - inter
    return inter / union if union > 0 else 0.0


def document_frame_iou(predicted: Points, truth: Points) -> float:
    """SmartDoc 2015 Jaccard index of a predicted quad against the true one.

    Both are mapped by the homography that sends the true quad (TL, TR, BR, BL) to the unit
    square, the document's own rectified frame, and compared there: an error of one pixel on
    a small, far or tilted document weighs what it weighs on the document, not on the image.
    The rectangle's size does not matter, since IoU is invariant under affine maps.
    """
    t = np.asarray(truth, np.float32).reshape(4, 2)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    h = _homography(t, square)
    h *= np.sign(h[2] @ np.r_[t.mean(axis=0), 1.0])  # the document's own side is w > 0
    p = np.c_[np.asarray(predicted, np.float64).reshape(-1, 2), np.ones(4)] @ h.T
    if np.any(p[:, 2] <= 1e-9):  # part of the prediction lies beyond the horizon
        return 0.0
    return polygon_iou(p[:, :2] / p[:, 2:], square)


def _homography(src: NDArray[np.float32], dst: NDArray[np.float32]) -> NDArray[np.float64]:
    rows = []
    for (x, y), (u, v) in zip(src.astype(np.float64), dst.astype(np.float64), strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.array(rows))
    return np.asarray(vt[-1].reshape(3, 3), np.float64)
