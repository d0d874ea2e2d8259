"""Edge evidence on the downscaled working image.

Edges come from the colour gradient (per pixel, the Lab channel that changes most), so a blue
card on a grey desk of the same brightness still has sides.  Each edge pixel is binned by the
direction of its gradient; a side of a candidate quad only counts edge pixels whose gradient
is roughly normal to it, which keeps text and background texture from propping up a false
side.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

ORIENTATION_BINS = 8  # 22.5 degrees each, over 180 degrees

# Chroma differences count a little more than lightness: a document and a desk of the same
# brightness still differ in colour, and chroma carries less texture and print.
_CHANNEL_GAIN = np.array([1.0, 1.6, 1.6], np.float32)
_CHANNEL_SCALAR = (*(float(g) for g in _CHANNEL_GAIN), 0.0)


@dataclass(frozen=True)
class EdgeMaps:
    edges: NDArray[np.uint8]  # Canny output, 0 or 255
    # Bit b set where an edge pixel of about normal bin b (that or a neighbour bin) lies within
    # a pixel: eight binary maps in one byte each, see ``oriented``.
    near_bits: NDArray[np.uint8]
    # The same with the gradient's sign: bit s (0-15, ``ORIENTATION_BINS`` per half turn) for
    # an edge whose colour steps along direction s; bits s and s + 8 are the two polarities of
    # unsigned bin s.  See ``polarities``.
    near_signed: NDArray[np.uint16]
    near_bin: list[NDArray[np.uint8]]  # per bin: edge pixels (255) of that or a neighbour bin
    lab: NDArray[np.float32]  # smoothed colour, Lab scaled by channel gain

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.edges.shape
        return h, w

    def oriented(
        self, bins: NDArray[np.intp], ys: NDArray[np.intp], xs: NDArray[np.intp]
    ) -> NDArray[np.bool_]:
        """Whether an edge of about normal bin ``bins`` lies near pixels (xs, ys), which must
        be inside the image; the three arrays broadcast."""
        flat = self.near_bits.ravel()[ys * self.edges.shape[1] + xs]
        return np.asarray((flat >> bins) & 1, np.bool_)

    def polarities(
        self, bins: NDArray[np.intp], ys: NDArray[np.intp], xs: NDArray[np.intp]
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """As ``oriented``, apart for the two polarities of the step: edges where the colour
        rises along the bin's normal, and where it falls."""
        flat = self.near_signed.ravel()[ys * self.edges.shape[1] + xs]
        rise = np.asarray((flat >> bins) & 1, np.bool_)
        fall = np.asarray((flat >> (bins + ORIENTATION_BINS)) & 1, np.bool_)
        return rise, fall


def edge_maps(small: NDArray[np.uint8], low: float, high: float) -> EdgeMaps:
    blurred = cv2.GaussianBlur(small, (0, 0), 1.0)
    plain = cv2.cvtColor(blurred, cv2.COLOR_BGR2Lab).astype(np.float32)
    # The gain per channel by cv2: numpy's broadcast over an axis of 3 is slow.
    lab = np.asarray(cv2.multiply(plain, _CHANNEL_SCALAR), np.float32)  # type: ignore[call-overload]
    gx = np.asarray(cv2.Sobel(lab, cv2.CV_16S, 1, 0, ksize=3), np.int16)
    gy = np.asarray(cv2.Sobel(lab, cv2.CV_16S, 0, 1, ksize=3), np.int16)
    # Canny on three channels follows, per pixel, the channel with the largest gradient.
    edges = np.asarray(cv2.Canny(gx, gy, low, high, L2gradient=True), np.uint8)
    h, w = edges.shape
    found = cv2.findNonZero(edges)  # row by row, as np.nonzero, at a fraction of its cost
    xy = np.empty((0, 2), np.intp) if found is None else found.reshape(-1, 2).astype(np.intp)
    at = xy[:, 1] * w + xy[:, 0]
    ex = gx.reshape(-1, 3)[at].astype(np.float32)
    ey = gy.reshape(-1, 3)[at].astype(np.float32)
    best = np.argmax(ex * ex + ey * ey, axis=1)[:, None]
    angle = np.arctan2(
        np.take_along_axis(ey, best, axis=1)[:, 0], np.take_along_axis(ex, best, axis=1)[:, 0]
    )
    turn = 2 * ORIENTATION_BINS
    signed = np.round(angle * (ORIENTATION_BINS / np.pi)).astype(np.intp) % turn
    bits = np.zeros(h * w, np.uint16)
    bits[at] = np.left_shift(1, signed).astype(np.uint16)
    bits = bits.reshape(h, w)
    # Signed bin s's map takes s - 1, s and s + 1 (modulo 16): rotate the word both ways.
    near16 = bits | (bits << 1) | (bits >> 15) | (bits >> 1) | (bits << 15)
    near = ((near16 & 0xFF) | (near16 >> 8)).astype(np.uint8)  # both polarities of a bin
    near_bin = [
        np.asarray(cv2.threshold(near & np.uint8(1 << b), 0, 255, cv2.THRESH_BINARY)[1], np.uint8)
        for b in range(ORIENTATION_BINS)
    ]
    near_signed = _dilate_bits(near16)
    near_bits = ((near_signed & 0xFF) | (near_signed >> 8)).astype(np.uint8)
    return EdgeMaps(
        edges=edges, near_bits=near_bits, near_signed=near_signed, near_bin=near_bin, lab=lab
    )


def _dilate_bits(bits: NDArray[np.uint16]) -> NDArray[np.uint16]:
    """3 x 3 dilation of every bit at once (an OR over the neighbours), in rows then columns."""
    rows = bits.copy()
    rows[:, 1:] |= bits[:, :-1]
    rows[:, :-1] |= bits[:, 1:]
    out = rows.copy()
    out[1:] |= rows[:-1]
    out[:-1] |= rows[1:]
    return out


def normal_bin(direction: NDArray[np.floating]) -> NDArray[np.intp]:
    """Orientation bin of the normal to segments with the given (dx, dy) directions."""
    d = np.asarray(direction, np.float64)
    angle = np.arctan2(d[..., 0], -d[..., 1])  # normal = direction rotated by 90 degrees
    bins = np.round(angle * (ORIENTATION_BINS / np.pi)).astype(np.intp)
    return np.asarray(bins % ORIENTATION_BINS, np.intp)


def side_support(
    maps: EdgeMaps, quads: NDArray[np.floating], samples: int = 32
) -> NDArray[np.float64]:
    """Support of each side of arbitrary quads, N x 4 x 3, as ``candidates._segment_support``:
    the fraction of the side (less 6 % at each end, for rounded corners and fingers holding a
    corner) backed by edges of matching orientation, the same past its ends, and the fraction
    of the side backed only by edges that step the other way than most of its edges."""
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    a = q
    b = np.roll(q, -1, axis=1)
    length = np.hypot(*(b - a).transpose(2, 0, 1))
    reach = np.maximum(0.15 * length, 6.0) / np.maximum(length, 1e-9)
    gap = 3.0 / np.maximum(length, 1e-9)
    u = np.linspace(0.0, 1.0, samples)
    t_in = np.broadcast_to(0.06 + 0.88 * u, (*length.shape, samples))
    t_before = -gap[..., None] - reach[..., None] * u
    t_after = 1 + gap[..., None] + reach[..., None] * u
    nb = normal_bin(b - a)
    rise, fall = _hits(maps, a, b, t_in, nb)
    inner = (rise | fall).mean(axis=2)
    other_way = inner - np.maximum(rise.mean(axis=2), fall.mean(axis=2))
    beyond = np.maximum(
        _either(_hits(maps, a, b, t_before, nb)).mean(axis=2),
        _either(_hits(maps, a, b, t_after, nb)).mean(axis=2),
    )
    return np.stack([inner, beyond, other_way], axis=-1)


def _either(hits: tuple[NDArray[np.bool_], NDArray[np.bool_]]) -> NDArray[np.bool_]:
    return hits[0] | hits[1]


def _hits(
    maps: EdgeMaps,
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    t: NDArray[np.float64],
    nb: NDArray[np.intp],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Edges of each polarity (see ``EdgeMaps.polarities``) at points ``t`` along the sides."""
    pts = a[:, :, None, :] + (b - a)[:, :, None, :] * t[..., None]
    h, w = maps.shape
    xi = np.round(pts[..., 0]).astype(np.intp)
    yi = np.round(pts[..., 1]).astype(np.intp)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    xi = np.clip(xi, 0, w - 1)
    yi = np.clip(yi, 0, h - 1)
    rise, fall = maps.polarities(nb[:, :, None], yi, xi)
    return rise & inside, fall & inside


def side_contrast(
    maps: EdgeMaps, quads: NDArray[np.floating], samples: int = 16
) -> NDArray[np.float64]:
    """Colour difference between thin strips just inside and just outside each side, N x 4 x 2:
    [..., 0] the difference of the strips' mean colours, [..., 1] the same over the strips'
    spread along the side.

    Means are taken over the whole side before differencing, so a background line with the
    same texture on both sides, or a checkerboard rule whose polarity alternates, scores low;
    the ratio tells a faint but clean paper edge from a seam in wood grain.
    """
    inside, outside = strips(maps, quads, samples)
    diff = np.linalg.norm(inside.mean(axis=2) - outside.mean(axis=2), axis=-1)
    spread = np.sqrt(inside.var(axis=2).sum(axis=-1) + outside.var(axis=2).sum(axis=-1))
    return np.stack([diff, diff / (spread + 2.0)], axis=-1)


def strips(
    maps: EdgeMaps, quads: NDArray[np.floating], samples: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Colours sampled 2.5 and 4 pixels inside and outside each side, N x 4 x 2 samples x 3."""
    q = np.asarray(quads, np.float64).reshape(-1, 4, 2)
    a = q
    b = np.roll(q, -1, axis=1)
    d = b - a
    length = np.maximum(np.hypot(d[..., 0], d[..., 1]), 1e-9)
    normal = np.stack([-d[..., 1], d[..., 0]], axis=-1) / length[..., None]
    centre = q.mean(axis=1, keepdims=True)
    outward = np.sign(np.einsum("nkc,nkc->nk", normal, (a + b) / 2 - centre))
    normal *= outward[..., None]
    t = np.linspace(0.1, 0.9, samples)
    pts = a[:, :, None, :] + d[:, :, None, :] * t[:, None]
    h, w = maps.shape
    lab = maps.lab.reshape(-1, 3)  # flat lookups: [y * w + x] is lab[y, x]
    strips = []
    for offset in (-4.0, -2.5, 2.5, 4.0):
        p = pts + normal[:, :, None, :] * offset
        xi = np.clip(np.round(p[..., 0]).astype(np.intp), 0, w - 1)
        yi = np.clip(np.round(p[..., 1]).astype(np.intp), 0, h - 1)
        strips.append(lab[yi * w + xi])  # N x 4 x samples x 3
    inside = np.concatenate(strips[:2], axis=2)
    outside = np.concatenate(strips[2:], axis=2)
    return inside, outside
