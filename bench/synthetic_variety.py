"""Extra variety for ``synthetic_documents``: looks its first version did not draw.

Paper that is not white (pastel forms, kraft, recycled grey), folds, booklets with rounded
corners, near-white and stone desks, hard-edged shadows (a phone or a hand between lamp and
desk), objects lying against or under a document's side, a thumb over a corner, vignetting.
Every draw here comes from its own random stream (``extra_rng``), so the frames'
other draws stay as they were.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Float = NDArray[np.float32]
Rgb = tuple[int, int, int]

# Per-channel gains (B, G, R) for paper that is not white.
_TONES = {
    "pastel_blue": (1.0, 0.93, 0.85),
    "pastel_green": (0.86, 1.0, 0.88),
    "pastel_pink": (0.93, 0.88, 1.0),
    "pastel_yellow": (0.72, 0.97, 1.0),
    "kraft": (0.47, 0.66, 0.82),
    "recycled_grey": (0.8, 0.8, 0.79),
    "cream": (0.83, 0.95, 1.0),
}


def extra_rng(seed: int, index: int, empty: bool = False) -> np.random.Generator:
    return np.random.default_rng([seed, index, 2 if empty else 3])


def paper_tone(
    rng: np.random.Generator, kind: str, texture: Float, paper: Rgb, effects: list[str]
) -> Rgb:
    """Tint a document's texture in place (ink and all, as coloured paper does)."""
    if kind == "id_card" or rng.random() > 0.3:
        return paper
    name = list(_TONES)[int(rng.integers(len(_TONES)))]
    gains = np.array(_TONES[name], np.float32) * rng.uniform(0.95, 1.02)
    texture *= gains
    effects.append(f"tone_{name}")
    bgr = np.array(paper[::-1], np.float32) * gains
    return tuple(int(v) for v in np.clip(bgr[::-1], 0, 255))  # type: ignore[return-value]


def fold(rng: np.random.Generator, kind: str, texture: Float, effects: list[str]) -> None:
    """A sheet folded in two or three and flattened again: one part a shade darker and a
    crease line across."""
    if kind not in ("a4_form", "diploma") or rng.random() > 0.3:
        return
    h, w = texture.shape[:2]
    vertical = rng.random() < 0.3
    at = rng.choice([1 / 3, 1 / 2, 2 / 3]) + rng.normal(0, 0.01)
    cut = round(at * (w if vertical else h))
    shade = rng.uniform(0.9, 0.97)
    if vertical:
        texture[:, cut:] *= shade
        texture[:, max(cut - 2, 0) : cut + 1] *= 0.85
    else:
        texture[cut:] *= shade
        texture[max(cut - 2, 0) : cut + 1] *= 0.85
    effects.append("fold")


def corner_radius_mm(rng: np.random.Generator, kind: str) -> float:
    """Rounded corners: always on cards (drawn by the caller), on half the booklets."""
    if kind == "booklet" and rng.random() < 0.5:
        return float(rng.uniform(2.0, 5.0))
    return 0.0


def bg_white_desk(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    """A white laminate desk or a sheet of printer paper under the document: the paper's
    edge is a step of a few grey levels, sometimes only in colour."""
    base = np.array(rng.uniform(225, 252, 3), np.float32)
    base = base.mean() + (base - base.mean()) * 0.3
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    small = rng.random((3, 4)).astype(np.float32)
    img *= (0.93 + 0.1 * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))[..., None]
    img += rng.normal(0, rng.uniform(0.5, 2.5), (h, w, 1)).astype(np.float32)
    return img


def bg_stone(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    """Marble with veins or granite speckle (a counter top)."""
    light = np.array(rng.uniform(120, 235, 3), np.float32)
    light = light.mean() + (light - light.mean()) * 0.4
    img = np.empty((h, w, 3), np.float32)
    img[:] = light
    if rng.random() < 0.5:  # granite: speckles of a few sizes
        for size, amount in ((1, 40.0), (3, 30.0)):
            coarse = rng.normal(0, 1, (h // size + 1, w // size + 1)).astype(np.float32)
            grain = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_NEAREST)
            img += (amount * rng.uniform(0.3, 1.0) * grain)[..., None]
    else:  # marble: thin dark veins along a warped direction
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, math.pi)
        noise = rng.random((6, 8)).astype(np.float32)
        warp = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) * rng.uniform(40, 160)
        u = xx * math.cos(ang) + yy * math.sin(ang) + warp
        veins = np.abs(np.sin(u * rng.uniform(0.01, 0.04))) ** rng.uniform(20, 60)
        img -= (veins * rng.uniform(40, 110))[..., None]
    return img


def objects_against(
    rng: np.random.Generator, back: Float, quad: Float, px_per_mm: float, effects: list[str]
) -> None:
    """A phone, a notebook or another paper lying against a side of the document, or slipped
    under it: drawn on the background, so the document covers what overlaps."""
    if rng.random() > 0.3:
        return
    h, w = back.shape[:2]
    for _ in range(int(rng.integers(1, 3))):
        side = int(rng.integers(4))
        a, b = quad[side].astype(np.float64), quad[(side + 1) % 4].astype(np.float64)
        along = b - a
        normal = np.array([-along[1], along[0]]) / max(float(np.hypot(*along)), 1e-9)
        if np.dot(normal, (a + b) / 2 - quad.mean(axis=0)) < 0:
            normal = -normal
        shape = rng.choice(["phone", "notebook", "sheet", "card"])
        size = {"phone": (72, 150), "notebook": (148, 210), "sheet": (210, 297), "card": (54, 86)}
        sz = np.array(size[str(shape)], np.float64) * px_per_mm * rng.uniform(0.9, 1.1)
        if rng.random() < 0.5:
            sz = sz[::-1]
        gap = rng.uniform(-0.3, 0.05) * sz[1]  # negative: slipped under the document
        centre = a + along * rng.uniform(0.1, 0.9) + normal * (sz[1] / 2 + gap)
        angle = math.degrees(math.atan2(along[1], along[0])) + rng.normal(0, 8)
        box = cv2.boxPoints(((float(centre[0]), float(centre[1])), (sz[0], sz[1]), angle))
        layer = np.zeros((h, w), np.float32)
        cv2.fillConvexPoly(layer, np.round(box * 4).astype(np.int32), 1.0, cv2.LINE_AA, 2)
        if shape == "phone":
            colour = np.full(3, rng.uniform(10, 60), np.float32)
        elif shape == "sheet":
            colour = np.array(rng.uniform(200, 250, 3), np.float32)
        else:
            colour = np.array(rng.uniform(20, 240, 3), np.float32)
        back[:] = back * (1 - layer[..., None]) + colour * layer[..., None]
        effects.append(f"against_{shape}")


def hard_shadow(rng: np.random.Generator, img: Float, effects: list[str]) -> None:
    """A sharp-edged shadow (a phone held over the desk, an arm): straight dark edges that
    cross the document and the desk alike."""
    if rng.random() > 0.15:
        return
    h, w = img.shape[:2]
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    size = rng.uniform(0.2, 0.7) * max(w, h)
    box = cv2.boxPoints(
        (
            (float(centre[0]), float(centre[1])),
            (size, size * rng.uniform(0.3, 1.5)),
            rng.uniform(0, 180),
        )
    )
    layer = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(layer, np.round(box).astype(np.int32), 1.0)
    layer = np.asarray(cv2.GaussianBlur(layer, (0, 0), rng.uniform(0.7, 3.0)), np.float32)
    img *= (1 - rng.uniform(0.2, 0.5) * layer)[..., None]
    effects.append("hard_shadow")


def thumb_on_corner(
    rng: np.random.Generator, img: Float, quad: Float, px_per_mm: float, effects: list[str]
) -> None:
    """A thumb holding the document down over one corner."""
    if rng.random() > 0.15:
        return
    h, w = img.shape[:2]
    k = int(rng.integers(4))
    corner = quad[k].astype(np.float64)
    outward = corner - quad.mean(axis=0)
    outward /= max(float(np.hypot(*outward)), 1e-9)
    tip = corner - outward * rng.uniform(0, 10) * px_per_mm
    root = tip + outward * 120 * px_per_mm
    red = rng.uniform(130, 230)
    skin = np.array([red * rng.uniform(0.5, 0.7), red * rng.uniform(0.65, 0.85), red], np.float32)
    layer = np.zeros((h, w), np.float32)
    width = max(3, round(rng.uniform(18, 24) * px_per_mm))
    cv2.line(layer, _pt(root), _pt(tip), 1.0, width, cv2.LINE_AA)
    layer = np.asarray(cv2.GaussianBlur(layer, (0, 0), max(0.6, 0.4 * px_per_mm)), np.float32)
    img[:] = img * (1 - layer[..., None]) + skin * layer[..., None]
    effects.append("thumb_corner")


def vignette(rng: np.random.Generator, img: Float, effects: list[str]) -> None:
    if rng.random() > 0.3:
        return
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)) / math.sqrt(2)
    img *= (1 - rng.uniform(0.2, 0.5) * r**2)[..., None]
    effects.append("vignette")


def strong_tilt(rng: np.random.Generator, capture: str) -> float:
    """Largest tilt (degrees) of the document plane for this shot."""
    if capture == "phone" and rng.random() < 0.25:
        return 50.0
    return 8.0 if capture == "kiosk" else 38.0


def _pt(p: NDArray[Any]) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))
