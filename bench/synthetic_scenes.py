"""A second, independently written generator of document frames, to check that the detector
was not tuned to ``synthetic_documents``.

It shares no drawing code with that one and draws things differently on purpose: a pinhole
camera looking at the desk from a random pose (not a projected rectangle fitted to the frame),
the document's outline rasterised from its signed distance in the document's own plane (no
warped alpha mask), its own paper palette and layouts, desks that the other lacks (woven
cloth, newsprint, a stack of paper under the document, glass with reflections), hands and
paper clips, lens distortion, sharpening halos, over-exposure and double JPEG.

``make_scenes(count, seed)`` and ``make_empty_scenes(count, seed)`` yield the same
``SyntheticFrame`` records as ``synthetic_documents``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.synthetic_documents import SyntheticFrame

Img = NDArray[np.float32]
KINDS = ("id_card", "booklet", "a4_form", "diploma")
DESKS = ("cloth", "newsprint", "paper_stack", "glass", "laminate", "felt")
SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 960), (1600, 900), (1920, 1080))
_MM = {"id_card": (85.6, 54.0), "a4_form": (210.0, 297.0), "diploma": (280.0, 200.0)}


def make_scenes(count: int, seed: int) -> Iterator[SyntheticFrame]:
    for i in range(count):
        yield scene(seed, i, KINDS[i % 4], DESKS[(i // 4) % len(DESKS)])


def make_empty_scenes(count: int, seed: int) -> Iterator[SyntheticFrame]:
    for i in range(count):
        yield scene(seed, i, None, DESKS[i % len(DESKS)])


def scene(seed: int, index: int, kind: str | None, desk: str) -> SyntheticFrame:
    rng = np.random.default_rng([seed, index, 0 if kind else 1, 77])
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    phone = rng.random() < 0.55
    effects: list[str] = []
    img = _desk(rng, desk, w, h)
    quad = None
    size = (0.0, 0.0)
    if kind is not None:
        size = _size(rng, kind)
        hom, quad = _pose(rng, size, w, h, phone)
        texture, radius = _document(rng, kind, size)
        _shadow_under(rng, img, quad)
        _composite(img, texture, hom, size, radius)
    if rng.random() < 0.35:
        _hand(rng, img, quad, effects)
    if quad is not None and rng.random() < 0.15:
        _clip(rng, img, quad, effects)
    _light(rng, img, effects)
    image, quad = _camera(rng, img, quad, effects)
    return SyntheticFrame(
        image=image,
        quad=quad,
        size_mm=size,
        kind=kind or "none",
        background=desk,
        capture="phone" if phone else "kiosk",
        effects=tuple(effects),
        seed=(seed, index),
    )


def _size(rng: np.random.Generator, kind: str) -> tuple[float, float]:
    if kind == "booklet":
        return (143.0, 105.0) if rng.random() < 0.5 else (88.0, 125.0)
    w, h = _MM[kind]
    return (w, h) if rng.random() < 0.5 else (h, w)


def _pose(
    rng: np.random.Generator, size: tuple[float, float], w: int, h: int, phone: bool
) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """Homography from document millimetres to pixels, and the document's corners, for a
    camera looking down at the desk (kiosk: nearly straight down; phone: up to 45 degrees)."""
    f = max(w, h) * rng.uniform(0.8, 1.4)
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    tilt = math.radians(rng.uniform(0, 45 if phone else 6))
    turn = rng.uniform(0, 2 * math.pi)
    spin = rng.uniform(-math.pi, math.pi) if rng.random() < 0.3 else rng.normal(0, 0.15)
    spin += rng.choice([0.0, math.pi / 2])
    rz = _rot([0, 0, 1], spin)
    rt = _rot([math.cos(turn), math.sin(turn), 0], tilt)
    r = rt @ rz
    corners = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], np.float64)
    corners -= corners.mean(axis=0)
    for _ in range(20):
        dist = max(size) * rng.uniform(1.0, 2.4) * f / max(w, h)
        t = np.array([rng.normal(0, 0.12) * dist, rng.normal(0, 0.12) * dist, dist])
        p = (np.c_[corners, np.zeros(4)] @ r.T + t) @ k.T
        quad = p[:, :2] / p[:, 2:]
        margin = 6
        if quad.min() > margin and np.all(quad.max(axis=0) < [w - margin, h - margin]):
            break
    else:  # fall back: shrink into the frame
        quad = (quad - quad.mean(axis=0)) * 0.5 + [w / 2, h / 2]
    hom = cv2.getPerspectiveTransform(
        (corners + np.array(size) / 2).astype(np.float32), quad.astype(np.float32)
    )
    return np.asarray(hom, np.float64), quad.astype(np.float32)


def _rot(axis: list[float], angle: float) -> NDArray[np.float64]:
    return np.asarray(cv2.Rodrigues(np.array(axis, np.float64) * angle)[0], np.float64)


def _document(rng: np.random.Generator, kind: str, size: tuple[float, float]) -> tuple[Img, float]:
    """Texture at 6 px/mm (BGR float) and the corner radius in mm."""
    ppm = 6.0 if kind != "id_card" else 12.0
    tw, th = round(size[0] * ppm), round(size[1] * ppm)
    palette = [(246, 246, 244), (236, 240, 246), (214, 232, 244), (226, 246, 228),
               (244, 226, 236), (190, 210, 226), (225, 225, 225)]  # fmt: skip
    paper = np.array(palette[int(rng.integers(len(palette)))], np.float32) * rng.uniform(0.9, 1)
    radius = 0.0
    if kind == "id_card":
        paper = paper if rng.random() < 0.6 else np.array(rng.uniform(20, 220, 3), np.float32)
        radius = 3.2
    elif kind == "booklet" and rng.random() < 0.4:  # closed: its cover
        paper = np.array([rng.uniform(20, 60), rng.uniform(20, 50), rng.uniform(90, 160)])
        radius = rng.uniform(0, 4)
    tex = np.empty((th, tw, 3), np.float32)
    tex[:] = paper
    tex += rng.normal(0, 2.0, (th, tw, 1)).astype(np.float32)
    ink = np.array(rng.uniform(0, 80, 3))
    dark = float(paper.mean()) < 120
    if dark:
        ink = np.array([120, 200, 230.0])
    if kind == "booklet" and not dark and rng.random() < 0.7:  # open: pages inside a cover
        border = round(rng.uniform(2, 5) * ppm)
        cover = np.array([rng.uniform(20, 70), rng.uniform(20, 70), rng.uniform(80, 170)])
        tex[:border], tex[-border:], tex[:, :border], tex[:, -border:] = cover, cover, cover, cover
    y = round(rng.uniform(0.06, 0.15) * th)
    while y < th * 0.9:
        x0 = round(rng.uniform(0.06, 0.2) * tw)
        x1 = round(rng.uniform(0.5, 0.94) * tw)
        thick = max(1, round(rng.uniform(0.3, 0.8) * ppm))
        if rng.random() < 0.2:  # table row
            cv2.rectangle(tex, (x0, y), (x1, y + 6 * thick), ink.tolist(), 1)
        else:
            for x in range(x0, x1, 3 * thick):
                if rng.random() < 0.7:
                    cv2.line(tex, (x, y), (x + 2 * thick, y), ink.tolist(), thick)
        y += round(rng.uniform(2.0, 5.0) * thick * 2)
    if rng.random() < 0.5:  # a photo or a seal
        c = (round(rng.uniform(0.2, 0.8) * tw), round(rng.uniform(0.2, 0.8) * th))
        rr = round(min(tw, th) * rng.uniform(0.1, 0.2))
        cv2.circle(tex, c, rr, (40, 40, 200), max(1, rr // 10))
    if kind == "diploma" and rng.random() < 0.7:  # a printed frame
        inset = round(rng.uniform(5, 14) * ppm)
        colour = rng.uniform(40, 200, 3).tolist()
        cv2.rectangle(tex, (inset, inset), (tw - inset, th - inset), colour, round(3 * ppm))
    return tex, radius


def _composite(
    img: Img, tex: Img, hom: NDArray[np.float64], size: tuple[float, float], radius: float
) -> None:
    """Warp the texture and blend it through an anti-aliased outline computed from the signed
    distance of each pixel, taken back to the document plane, to the rounded rectangle."""
    h, w = img.shape[:2]
    th, tw = tex.shape[:2]
    scale = np.diag([tw / size[0], th / size[1], 1.0])
    to_tex = scale @ np.linalg.inv(hom)
    warped = cv2.warpPerspective(
        tex, np.linalg.inv(to_tex), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    inv = np.linalg.inv(hom)
    p = np.stack([xx, yy, np.ones_like(xx)], axis=-1) @ inv.T
    u, v = p[..., 0] / p[..., 2], p[..., 1] / p[..., 2]  # mm in the document plane
    hw, hh = size[0] / 2, size[1] / 2
    qx, qy = np.abs(u - hw) - (hw - radius), np.abs(v - hh) - (hh - radius)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    sdf = outside + np.minimum(np.maximum(qx, qy), 0) - radius  # mm, < 0 inside
    # mm per pixel, locally: the Jacobian determinant of the inverse map is det / w^3
    mm_per_px = np.sqrt(abs(np.linalg.det(inv)) / np.abs(p[..., 2]) ** 3)
    alpha = np.clip(0.5 - sdf / mm_per_px, 0, 1).astype(np.float32)[..., None]
    img[:] = img * (1 - alpha) + warped * alpha


def _desk(rng: np.random.Generator, desk: str, w: int, h: int) -> Img:
    img = np.empty((h, w, 3), np.float32)
    base = np.array(rng.uniform(30, 230, 3), np.float32)
    img[:] = base
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if desk == "cloth":
        period = rng.uniform(2.5, 6)
        weave = np.sin(xx * 2 * math.pi / period) * np.sin(yy * 2 * math.pi / period)
        img += (weave * rng.uniform(5, 25))[..., None]
    elif desk == "newsprint":
        img[:] = rng.uniform(170, 225)
        for y in range(int(rng.integers(0, 8)), h, int(rng.integers(9, 18))):
            for x in range(0, w, int(rng.integers(30, 90))):
                if rng.random() < 0.85:
                    cv2.line(img, (x, y), (x + int(rng.integers(15, 80)), y), (60, 60, 60), 2)
    elif desk == "paper_stack":
        img[:] = rng.uniform(40, 160, 3)
        for _ in range(int(rng.integers(1, 4))):
            c = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
            box = cv2.boxPoints((c, (w * 1.2, h * 1.2), rng.uniform(-20, 20)))
            off = np.array([rng.choice([-1, 1]) * w * 0.45, 0.0])
            pts = np.round(box + off).astype(np.int32)
            cv2.fillConvexPoly(img, pts, rng.uniform(215, 250, 3).tolist(), cv2.LINE_AA)
    elif desk == "glass":
        img[:] = rng.uniform(5, 40, 3)
        for _ in range(3):
            a = rng.uniform(0, math.pi)
            band = np.cos(a) * xx + np.sin(a) * yy - rng.uniform(0, max(w, h))
            img += (rng.uniform(10, 40) * np.exp(-((band / rng.uniform(20, 120)) ** 2)))[..., None]
    elif desk == "laminate":
        img[:] = rng.uniform(215, 245) + rng.uniform(-6, 6, 3)
    else:  # felt
        img[:] = rng.uniform(20, 90, 3)
        img += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    return img


def _shadow_under(rng: np.random.Generator, img: Img, quad: NDArray[np.float32]) -> None:
    if rng.random() > 0.5:
        return
    h, w = img.shape[:2]
    m = np.zeros((h, w), np.float32)
    shift = rng.normal(0, 4, 2)
    cv2.fillConvexPoly(m, np.round(quad + shift).astype(np.int32), 1.0)
    m = np.asarray(cv2.GaussianBlur(m, (0, 0), rng.uniform(1, 8)), np.float32)
    img *= (1 - rng.uniform(0.2, 0.5) * m)[..., None]


def _hand(
    rng: np.random.Generator, img: Img, quad: NDArray[np.float32] | None, effects: list[str]
) -> None:
    h, w = img.shape[:2]
    skin = np.array([rng.uniform(90, 150), rng.uniform(120, 180), rng.uniform(170, 240)])
    if quad is not None:  # fingers reach over a side (or a corner) from outside
        k = int(rng.integers(4))
        target = quad[k] + (quad[(k + 1) % 4] - quad[k]) * rng.uniform(0, 1)
        out = target - quad.mean(axis=0)
        target = target - out / max(float(np.hypot(*out)), 1e-9) * rng.uniform(0, 0.03) * w
    else:
        target = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        out = target - np.array([w / 2, h / 2])
    edge = target + out / max(float(np.hypot(*out)), 1e-9) * 2 * max(w, h)
    width = rng.uniform(0.03, 0.07) * max(w, h)
    m = np.zeros((h, w), np.float32)
    across = np.array([-out[1], out[0]]) / max(float(np.hypot(*out)), 1e-9)
    for j in range(int(rng.integers(1, 4))):
        off = across * (j - 1) * width * 1.1
        p0, p1 = np.round(edge + off).astype(int), np.round(target + off).astype(int)
        cv2.line(m, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), 1.0, round(width))
    m = np.asarray(cv2.GaussianBlur(m, (0, 0), 1.5), np.float32)
    img[:] = img * (1 - m[..., None]) + skin * m[..., None]
    effects.append("hand")


def _clip(
    rng: np.random.Generator, img: Img, quad: NDArray[np.float32], effects: list[str]
) -> None:
    k = int(rng.integers(4))
    at = quad[k] + (quad[(k + 1) % 4] - quad[k]) * rng.uniform(0.2, 0.8)
    size = float(np.linalg.norm(quad[1] - quad[0])) * 0.08
    box = cv2.boxPoints(((float(at[0]), float(at[1])), (size * 0.4, size), rng.uniform(0, 180)))
    cv2.polylines(img, [np.round(box).astype(np.int32)], True, (160, 160, 170), 2, cv2.LINE_AA)
    effects.append("clip")


def _light(rng: np.random.Generator, img: Img, effects: list[str]) -> None:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lx, ly = rng.uniform(-0.5, 1.5) * w, rng.uniform(-0.5, 1.5) * h
    d = np.hypot(xx - lx, yy - ly) / max(w, h)
    img *= (rng.uniform(0.7, 1.3) / (1 + rng.uniform(0, 1.2) * d**2))[..., None]
    img *= np.array(rng.uniform(0.9, 1.1, 3), np.float32)
    if rng.random() < 0.35:  # a streak of specular glare
        a = rng.uniform(0, math.pi)
        band = np.cos(a) * (xx - rng.uniform(0, w)) + np.sin(a) * (yy - rng.uniform(0, h))
        img += (rng.uniform(60, 200) * np.exp(-((band / rng.uniform(5, 40)) ** 2)))[..., None]
        effects.append("streak")


def _camera(
    rng: np.random.Generator, img: Img, quad: NDArray[np.float32] | None, effects: list[str]
) -> tuple[NDArray[np.uint8], NDArray[np.float32] | None]:
    h, w = img.shape[:2]
    if rng.random() < 0.4:  # barrel distortion; the corners move with the image
        k1 = rng.uniform(-0.06, 0.0)
        cam = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float64)
        dist = np.array([k1, 0, 0, 0], np.float64)
        mx, my = cv2.initUndistortRectifyMap(cam, dist, None, cam, (w, h), cv2.CV_32FC1)
        img = np.asarray(
            cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), np.float32
        )
        if quad is not None:
            pts = cv2.undistortPoints(quad.reshape(-1, 1, 2).astype(np.float64), cam, dist, P=cam)
            quad = pts.reshape(4, 2).astype(np.float32)
        effects.append("distortion")
    if rng.random() < 0.4:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0)), np.float32)
        effects.append("blur")
    img = img + rng.normal(0, rng.uniform(1, 6), img.shape).astype(np.float32)
    if rng.random() < 0.4:  # phone sharpening, with halos
        soft = cv2.GaussianBlur(img, (0, 0), 1.5)
        img = img + rng.uniform(0.5, 1.5) * (img - soft)
        effects.append("sharpened")
    if rng.random() < 0.2:
        img = img * rng.uniform(1.1, 1.4)
        effects.append("overexposed")
    out = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(2 if rng.random() < 0.3 else 1):
        q = int(rng.integers(35, 95))
        encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])[1]
        out = np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), np.uint8)
        effects.append(f"jpeg{q}")
    return np.asarray(out, np.uint8), quad
