"""What lies inside a candidate outline: print, or one flat colour.

A document carries print (text, a table, a photo, a guilloche, an emblem on a cover).  A phone,
a sticky note or a dark mat on the desk has as clean an outline, around one flat colour; with
no print inside, an outline needs more of the other cues to be a document, and a flat dark
grey one (a phone, a tablet, a black pad) is not one.  Sampled on a grid inside each quad on
the working image.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from .edges import EdgeMaps

_GRID = 10  # samples per direction inside each quad
_INSET = 0.12  # share of the quad kept clear at each side (borders, shadows, fingers)
_NEUTRAL = 204.8  # a and b of a grey after the channel gain of ``edges`` (128 x 1.6)

INTERIOR_FEATURES = ("print", "blank_dark")


def print_density(maps: EdgeMaps) -> NDArray[np.float32]:
    """Share of edge pixels around every pixel (7 x 7 box), to sample per candidate."""
    return np.asarray(cv2.blur(maps.edges.astype(np.float32) / 255.0, (7, 7)), np.float32)


def interior_features(
    maps: EdgeMaps, density: NDArray[np.float32], quads: NDArray[np.float64]
) -> NDArray[np.float64]:
    """N x len(INTERIOR_FEATURES) cues for candidate quads (working image)."""
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    t = np.linspace(_INSET, 1 - _INSET, _GRID)
    grid_u, grid_v = np.meshgrid(t, t)
    u, v = grid_u.ravel(), grid_v.ravel()
    weights = np.stack([(1 - u) * (1 - v), u * (1 - v), u * v, (1 - u) * v], axis=1)  # S x 4
    pts = np.einsum("sk,nkc->nsc", weights, q)
    h, w = maps.shape
    xi = np.clip(np.round(pts[..., 0]).astype(np.intp), 0, w - 1)
    yi = np.clip(np.round(pts[..., 1]).astype(np.intp), 0, h - 1)
    at = yi * w + xi  # flat lookups
    printed = density.ravel()[at].mean(axis=1)
    colour = maps.lab.reshape(-1, 3)[at]  # N x S x 3
    # The median over the samples, as np.median takes it (the mean of the middle two of an
    # even count) without its generic machinery.
    middle = (_GRID * _GRID) // 2
    part = np.partition(colour, (middle - 1, middle), axis=1)
    typical = (part[:, middle - 1] + part[:, middle]) / 2  # N x 3
    lightness = typical[:, 0] / 255.0
    chroma = np.hypot(typical[:, 1] - _NEUTRAL, typical[:, 2] - _NEUTRAL)
    flat = np.exp(-printed / 0.01)  # 1 for no print at all
    blank_dark = flat * np.clip(1.0 - lightness / 0.5, 0.0, 1.0) * np.exp(-chroma / 20.0)
    # Saturates at about 2 % of the inside on edges: more print says no more.
    has_print = np.minimum(np.log1p(100.0 * printed), 1.0)
    return np.stack([has_print, blank_dark], axis=1)
