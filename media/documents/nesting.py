"""Between two nested outlines, the outer one when it is framed by a margin of one colour.

A printed table, a diploma's decorative border or a booklet's pages have cleaner edges than
the paper's own edge on a desk of nearly the paper's colour, so the linear score often ranks
that inner outline first.  An outline holding it is the document when, just inside it, every
side shows the same uniform colour (the paper's margin, the cover) and something else lies
beyond every side.  A patterned mat around a card fails the uniformity test; an outline made
of a card and its cast shadow fails the one-colour test.  One side may fail (a shadow or a
finger across the margin).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .edges import EdgeMaps, strips
from .scoring import FEATURES, inside

_SUPPORT_MIN = FEATURES.index("support_min")
_SUPPORT_MEAN = FEATURES.index("support_mean")
_MAX_SCORE_GAP = 5.0  # how far below the inner outline the outer one may score
_AREA_RATIO = (1.08, 3.0)
_MARGIN_OFF = 16.0  # Lab units (see edges): how much the margin may differ between sides
_MARGIN_SPREAD = 18.0  # and along a side
_SHARED_SIDE = 2.5  # pixels: a side this close to the inner outline is the same side


def outermost(
    quads: NDArray[np.float64],
    feats: NDArray[np.float64],
    scores: NDArray[np.float64],
    maps: EdgeMaps,
) -> int:
    """Index of the candidate to try first: the best-scoring one, or the outline that holds it
    with a uniform band in between (repeatedly, for a page in a cover on a mat)."""
    best = 0
    for _ in range(2):
        outer = _outer_of(best, quads, feats, scores, maps)
        if outer is None:
            break
        best = outer
    return best


def _outer_of(
    k: int,
    quads: NDArray[np.float64],
    feats: NDArray[np.float64],
    scores: NDArray[np.float64],
    maps: EdgeMaps,
) -> int | None:
    area = _area(quads)
    ratio = area / max(area[k], 1e-9)
    holds = inside(quads, quads[k : k + 1])[:, 0]
    ok = holds & (ratio > _AREA_RATIO[0]) & (ratio < _AREA_RATIO[1])
    ok &= scores > scores[k] - _MAX_SCORE_GAP
    ok &= (feats[:, _SUPPORT_MIN] >= 0.3) & (feats[:, _SUPPORT_MEAN] >= 0.6)
    picks = np.flatnonzero(ok)
    if len(picks) == 0:
        return None
    within, beyond = strips(maps, quads[picks], 16)
    margin = within.mean(axis=2)  # P x 4 x 3: colour just inside each side
    typical = np.median(margin, axis=1, keepdims=True)
    off = np.linalg.norm(margin - typical, axis=-1)  # how far each side's margin strays
    step = np.linalg.norm(margin - beyond.mean(axis=2), axis=-1)
    spread = np.sqrt(within.var(axis=2).sum(axis=-1))
    fits = (off < np.maximum(_MARGIN_OFF, 0.6 * step)) & (spread < _MARGIN_SPREAD) & (step > 3.0)
    # A side the outline shares with the inner one has the inner outline's own inside for its
    # "margin": it proves nothing, or an outline made of the document and a strip of desk
    # beside it would pass on the three sides it shares with the document.
    fits &= side_gaps(quads[picks], quads[k]) > _SHARED_SIDE
    uniform = (fits.sum(axis=1) >= 3) & np.all(step > 2.5, axis=1)  # a shadow may spoil a side
    if not uniform.any():
        return None
    good = picks[uniform]
    return int(good[np.argmax(scores[good])])


def side_gaps(outlines: NDArray[np.float64], inner: NDArray[np.float64]) -> NDArray[np.float64]:
    """P x 4: how far the midpoint of each side of each outline lies from the inner quad's
    outline (the nearest of its four sides)."""
    mid = (outlines + np.roll(outlines, -1, axis=1)) / 2  # P x 4 x 2
    a = inner
    d = np.roll(inner, -1, axis=0) - inner  # 4 x 2
    rel = mid[:, :, None, :] - a  # P x 4 sides x 4 inner sides x 2
    t = np.clip((rel @ d[:, :, None])[..., 0] / np.maximum((d * d).sum(axis=1), 1e-9), 0, 1)
    gap = np.hypot(*(rel - t[..., None] * d).transpose(3, 0, 1, 2))
    return np.asarray(gap.min(axis=2), np.float64)


def _area(quads: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y = quads[..., 0], quads[..., 1]
    signed = np.sum(x * np.roll(y, -1, axis=1) - y * np.roll(x, -1, axis=1), axis=1)
    return np.asarray(np.abs(signed) / 2, np.float64)
