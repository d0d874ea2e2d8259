"""Deterministic synthetic kiosk and phone frames of documents, with ground-truth corners.

Each frame is rendered from its own seed, so frame ``i`` of a set is the same whatever the
set's size.  Variety is deliberately wider than what a real kiosk shows (strong tilt, glare on
edges, backgrounds of the paper's own colour, fingers and pens across sides), so that a
detector tuned here is not tuned to one look.

Frames of an empty desk (``make_empty_frames``: the same backgrounds, desk objects, lighting
and optics, but no document) have ``quad`` None: a detector should find nothing there.

The ground-truth quad is the outer boundary of the rendered document (the corners of the card's
bounding rectangle when its corners are rounded), in pixel-centre coordinates: pixel ``(x, y)``
covers ``[x - 0.5, x + 0.5] x [y - 0.5, y + 0.5]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from bench import synthetic_variety as variety

KINDS = ("id_card", "booklet", "a4_form", "diploma")
BACKGROUNDS = (
    "dark_pad",
    "wood",
    "clutter",
    "paper_like",
    "gradient",
    "pattern",
    "white_desk",
    "stone",
)
FRAME_SIZES = ((640, 480), (1280, 720), (1920, 1080))

Float = NDArray[np.float32]
Rgb = tuple[int, int, int]


@dataclass(frozen=True)
class SyntheticFrame:
    image: NDArray[np.uint8]  # BGR, H x W x 3
    quad: Float | None  # 4 x 2, TL TR BR BL of the document (its own top-left first); None: empty
    size_mm: tuple[float, float]  # document width, height
    kind: str
    background: str
    capture: str  # "kiosk" (top-down document camera) or "phone"
    effects: tuple[str, ...]
    seed: tuple[int, int]


def make_frames(count: int, seed: int) -> Iterator[SyntheticFrame]:
    """Frames cycling through every kind x background pair, each from its own seed."""
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        background = BACKGROUNDS[(i // len(KINDS)) % len(BACKGROUNDS)]
        yield make_frame(seed, i, kind, background)


def make_empty_frames(count: int, seed: int) -> Iterator[SyntheticFrame]:
    """Desks without a document, cycling through the backgrounds, each from its own seed
    (a stream apart from ``make_frames``'s, so adding them changes no document frame)."""
    for i in range(count):
        yield make_empty_frame(seed, i, BACKGROUNDS[i % len(BACKGROUNDS)])


def make_empty_frame(seed: int, index: int, background: str) -> SyntheticFrame:
    rng = np.random.default_rng([seed, index, 1])
    capture = "kiosk" if rng.random() < 0.45 else "phone"
    width, height = FRAME_SIZES[rng.integers(len(FRAME_SIZES))]
    paper = tuple(int(v) for v in rng.uniform(190, 250, 3))
    frame = _BACKGROUNDS[background](rng, width, height, paper)  # type: ignore[arg-type]
    px_per_mm = rng.uniform(1.0, 5.0) * width / 1280
    nowhere = np.full((4, 2), -10.0, np.float32)  # no document for desk objects to avoid
    effects: list[str] = []
    if background == "clutter" or rng.random() < 0.3:
        effects.append("objects")
        _draw_clutter(rng, frame, nowhere, px_per_mm, under=True)
    if rng.random() < 0.7:
        effects.append("lighting")
        _lighting(rng, frame)
    if rng.random() < 0.3:
        effects.append("shadow")
        _soft_shadow(rng, frame)
    extra = variety.extra_rng(seed, index, empty=True)
    variety.hard_shadow(extra, frame, effects)
    variety.vignette(extra, frame, effects)
    image = _optics(rng, frame, effects, capture)
    quality = int(rng.integers(40, 96))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    effects.append(f"jpeg{quality}")
    return SyntheticFrame(
        image=np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), np.uint8),
        quad=None,
        size_mm=(0.0, 0.0),
        kind="none",
        background=background,
        capture=capture,
        effects=tuple(effects),
        seed=(seed, index),
    )


def make_frame(seed: int, index: int, kind: str, background: str) -> SyntheticFrame:
    rng = np.random.default_rng([seed, index])
    extra = variety.extra_rng(seed, index)
    capture = "kiosk" if rng.random() < 0.45 else "phone"
    width, height = FRAME_SIZES[rng.integers(len(FRAME_SIZES))]
    effects: list[str] = []
    texture, alpha, size_mm, paper = _render_document(kind, rng, extra, effects)
    quad = _place_quad(rng, size_mm, (width, height), variety.strong_tilt(extra, capture))

    back = _BACKGROUNDS[background](rng, width, height, paper)
    px_per_mm = math.sqrt(_polygon_area(quad) / (size_mm[0] * size_mm[1]))
    if background == "clutter":
        _draw_clutter(rng, back, quad, px_per_mm, under=True)
    variety.objects_against(extra, back, quad, px_per_mm, effects)

    doc, mask = _warp_document(texture, alpha, quad, (width, height))
    if rng.random() < 0.55:
        effects.append("cast_shadow")
        _cast_shadow(rng, back, mask, px_per_mm)
    frame = back * (1.0 - mask[..., None]) + doc * mask[..., None]

    if background == "clutter" and rng.random() < 0.5:
        effects.append("object_over")
        _draw_clutter(rng, frame, quad, px_per_mm, under=False)
    if rng.random() < 0.35:
        effects.append("fingers")
        _draw_fingers(rng, frame, quad, px_per_mm)
    variety.thumb_on_corner(extra, frame, quad, px_per_mm, effects)
    if rng.random() < 0.7:
        effects.append("lighting")
        _lighting(rng, frame)
    if rng.random() < 0.3:
        effects.append("shadow")
        _soft_shadow(rng, frame)
    variety.hard_shadow(extra, frame, effects)
    variety.vignette(extra, frame, effects)
    if rng.random() < 0.4:
        effects.append("glare")
        _glare(rng, frame, quad, px_per_mm)
    frame = _optics(rng, frame, effects, capture)
    quality = int(rng.integers(40, 96))
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    effects.append(f"jpeg{quality}")
    return SyntheticFrame(
        image=np.asarray(image, np.uint8),
        quad=quad,
        size_mm=size_mm,
        kind=kind,
        background=background,
        capture=capture,
        effects=tuple(effects),
        seed=(seed, index),
    )


# ---------------------------------------------------------------- geometry of the shot


def _place_quad(
    rng: np.random.Generator, size_mm: tuple[float, float], frame: tuple[int, int], tilt: float
) -> Float:
    """Project the document plane through a pinhole camera, then fit it into the frame."""
    w_mm, h_mm = size_mm
    plane = np.array([[0, 0], [w_mm, 0], [w_mm, h_mm], [0, h_mm]], np.float64)
    plane -= plane.mean(axis=0)
    tilt_x, tilt_y = np.radians(rng.uniform(-tilt, tilt, 2))
    r = rng.random()
    if r < 0.45:
        spin = rng.normal(0.0, 6.0)
    elif r < 0.75:
        spin = 90.0 * rng.choice([-1, 1]) + rng.normal(0.0, 6.0)
    else:
        spin = rng.uniform(-180.0, 180.0)
    c, s = math.cos(math.radians(spin)), math.sin(math.radians(spin))
    pts = np.c_[plane @ np.array([[c, s], [-s, c]]), np.zeros(4)]
    cx, sx = math.cos(tilt_x), math.sin(tilt_x)
    cy, sy = math.cos(tilt_y), math.sin(tilt_y)
    rot = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array(
        [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]]
    )
    pts = pts @ rot.T
    distance = max(w_mm, h_mm) * rng.uniform(0.9, 2.2)
    proj = pts[:, :2] / (pts[:, 2:] + distance)
    width, height = frame
    coverage = rng.uniform(0.15, 0.85)
    area = _polygon_area(proj.astype(np.float32))
    proj *= math.sqrt(coverage * width * height / area)
    margin = 0.02 * min(width, height) + 4
    span = proj.max(axis=0) - proj.min(axis=0)
    fit = min((width - 2 * margin) / span[0], (height - 2 * margin) / span[1], 1.0)
    proj *= fit
    span = proj.max(axis=0) - proj.min(axis=0)
    lo = proj.min(axis=0)
    room = np.array([width, height]) - 2 * margin - span
    offset = margin + rng.uniform(0, 1, 2) * np.maximum(room, 0) - lo
    return _f32(proj + offset - 0.5)


def _f32(array: Any) -> Float:
    return np.asarray(array, np.float32)


def _polygon_area(quad: NDArray[Any]) -> float:
    x, y = quad[:, 0].astype(np.float64), quad[:, 1].astype(np.float64)
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _warp_document(
    texture: Float, alpha: Float, quad: Float, frame: tuple[int, int]
) -> tuple[Float, Float]:
    th, tw = alpha.shape
    side = math.sqrt(_polygon_area(quad))
    shrink = min(1.0, 1.6 * side / math.sqrt(th * tw))
    if shrink < 1.0:
        size = (max(2, round(tw * shrink)), max(2, round(th * shrink)))
        texture = _f32(cv2.resize(texture, size, interpolation=cv2.INTER_AREA))
        alpha = _f32(cv2.resize(alpha, size, interpolation=cv2.INTER_AREA))
        th, tw = alpha.shape
    src = np.array([[-0.5, -0.5], [tw - 0.5, -0.5], [tw - 0.5, th - 0.5], [-0.5, th - 0.5]])
    h = cv2.getPerspectiveTransform(src.astype(np.float32), quad)
    doc = cv2.warpPerspective(texture, h, frame, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(alpha, h, frame, flags=cv2.INTER_LINEAR)
    return _f32(doc), _f32(mask)


# ---------------------------------------------------------------- document textures


def _render_document(
    kind: str, rng: np.random.Generator, extra: np.random.Generator, effects: list[str]
) -> tuple[Float, Float, tuple[float, float], Rgb]:
    """Texture (BGR float32), alpha, size in mm and paper colour (RGB)."""
    if kind == "id_card":
        size = (85.6, 54.0)
    elif kind == "booklet":
        size = (rng.choice([105.0, 210.0]), 143.0)
    elif kind == "a4_form":
        size = (210.0, 297.0)
    else:
        size = [(297.0, 210.0), (210.0, 297.0), (260.0, 185.0), (220.0, 155.0)][rng.integers(4)]
    ppm = 1400.0 / max(size)  # texture pixels per mm: enough for a 1080p close-up
    w, h = round(size[0] * ppm), round(size[1] * ppm)
    painter = _Painter(rng, w, h, ppm)
    radius = variety.corner_radius_mm(extra, kind) * ppm
    if kind == "id_card":
        paper = painter.card()
        radius = rng.uniform(2.0, 3.5) * ppm
    elif kind == "booklet":
        paper = painter.booklet(spread=size[0] > 150)
    elif kind == "a4_form":
        paper = painter.form()
    else:
        paper = painter.diploma()
    rgb = np.asarray(painter.image, np.float32)
    grain = rng.normal(0, rng.uniform(0.5, 4.0), (h // 4 + 1, w // 4 + 1)).astype(np.float32)
    rgb += cv2.resize(grain, (w, h))[..., None]
    alpha = np.zeros((h, w), np.float32)
    if radius > 0:
        r = round(radius)
        cv2.rectangle(alpha, (r, 0), (w - 1 - r, h - 1), 1.0, -1)
        cv2.rectangle(alpha, (0, r), (w - 1, h - 1 - r), 1.0, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (w - 1 - r, h - 1 - r), (r, h - 1 - r)):
            cv2.circle(alpha, (cx, cy), r, 1.0, -1, cv2.LINE_AA)
    else:
        alpha[:] = 1.0
    if rng.random() < 0.5:  # darker rim: the thickness of a card, a worn page edge
        rim = max(1, round(rng.uniform(0.2, 0.8) * ppm))
        edge = cv2.erode(alpha, np.ones((2 * rim + 1, 2 * rim + 1), np.uint8))
        rgb *= (1.0 - rng.uniform(0.05, 0.25) * (alpha - edge))[..., None]
    texture = _f32(rgb[..., ::-1].copy())
    paper = variety.paper_tone(extra, kind, texture, paper, effects)
    variety.fold(extra, kind, texture, effects)
    return texture, alpha, (float(size[0]), float(size[1])), paper


class _Painter:
    """Pillow drawing of plausible layouts; Chinese glyphs are imitated by stroke clusters."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, ppm: float) -> None:
        self.rng, self.w, self.h, self.ppm = rng, w, h, ppm
        self.image = Image.new("RGB", (w, h))
        self.draw = ImageDraw.Draw(self.image)

    def colour(self, lo: int, hi: int, tint: float = 0.1) -> Rgb:
        base = self.rng.uniform(lo, hi)
        rgb = base * (1 + self.rng.uniform(-tint, tint, 3))
        return tuple(int(v) for v in np.clip(rgb, 0, 255))  # type: ignore[return-value]

    def mm(self, v: float) -> int:
        return round(v * self.ppm)

    def fill(self, rgb: Rgb, rgb2: Rgb | None = None) -> None:
        if rgb2 is None:
            self.draw.rectangle((0, 0, self.w, self.h), fill=rgb)
            return
        t = np.linspace(0, 1, self.h)[:, None, None]
        grad = np.array(rgb) * (1 - t) + np.array(rgb2) * t
        arr = np.broadcast_to(grad, (self.h, self.w, 3)).astype(np.uint8)
        self.image.paste(Image.fromarray(arr))

    def glyphs(self, x: float, y: float, size: float, count: int, rgb: Rgb) -> None:
        """A run of CJK-like glyphs (x, y, size in mm)."""
        s = self.mm(size)
        width = max(1, round(s / 9))
        for i in range(count):
            gx, gy = self.mm(x) + i * round(s * 1.1), self.mm(y)
            for _ in range(int(self.rng.integers(3, 7))):
                if self.rng.random() < 0.5:
                    a, b = self.rng.uniform(0, s, 2)
                    yy = gy + self.rng.uniform(0, s)
                    pts = [(gx + min(a, b), yy), (gx + max(a, b), yy)]
                else:
                    a, b = self.rng.uniform(0, s, 2)
                    xx = gx + self.rng.uniform(0, s)
                    pts = [(xx, gy + min(a, b)), (xx + self.rng.uniform(-s / 4, s / 4), gy + b)]
                self.draw.line(pts, fill=rgb, width=width)

    def text(self, x: float, y: float, size: float, content: str, rgb: Rgb) -> None:
        font = ImageFont.load_default(max(6, self.mm(size)))
        self.draw.text((self.mm(x), self.mm(y)), content, fill=rgb, font=font)

    def digits(self, n: int) -> str:
        return "".join(str(d) for d in self.rng.integers(0, 10, n))

    def lines_of_text(self, x: float, y: float, w: float, size: float, rows: int, rgb: Rgb) -> None:
        for r in range(rows):
            n = int(self.rng.integers(max(2, int(w / size / 3)), int(w / (size * 1.1)) + 1))
            if self.rng.random() < 0.3:
                self.text(x, y + r * size * 1.7, size, self.digits(n), rgb)
            else:
                self.glyphs(x, y + r * size * 1.7, size, n, rgb)

    def stamp(self, x: float, y: float, r: float) -> None:
        red = (int(self.rng.uniform(170, 230)), 30, 40)
        box = (self.mm(x - r), self.mm(y - r), self.mm(x + r), self.mm(y + r))
        self.draw.ellipse(box, outline=red, width=max(1, self.mm(r / 12)))
        self.glyphs(x - r * 0.5, y - r * 0.2, r / 3, 3, red)

    def table(self, x: float, y: float, w: float, h: float, rows: int, cols: int, rgb: Rgb) -> None:
        lw = max(1, self.mm(0.25))
        self.draw.rectangle(
            (self.mm(x), self.mm(y), self.mm(x + w), self.mm(y + h)), outline=rgb, width=lw
        )
        for r in range(1, rows):
            yy = self.mm(y + h * r / rows)
            self.draw.line([(self.mm(x), yy), (self.mm(x + w), yy)], fill=rgb, width=lw)
        cuts = np.sort(self.rng.uniform(0.1, 0.9, cols - 1))
        for c in cuts:
            xx = self.mm(x + w * c)
            self.draw.line([(xx, self.mm(y)), (xx, self.mm(y + h))], fill=rgb, width=lw)
        ink = self.colour(20, 70)
        size = min(h / rows * 0.5, 4.0)
        for r in range(rows):
            if self.rng.random() < 0.8:
                count = int(self.rng.integers(2, 6))
                self.glyphs(x + 1.5, y + h * r / rows + size * 0.4, size, count, ink)

    def card(self) -> Rgb:
        rng = self.rng
        if rng.random() < 0.75:  # resident identity card, light guilloche ground
            paper = self.colour(200, 245, 0.08)
            self.fill(paper, self.colour(190, 240, 0.1))
            wave = self.colour(150, 220, 0.2)
            for k in range(int(rng.integers(6, 18))):
                ys = np.linspace(0, self.w, 60)
                amp, ph, y0 = rng.uniform(2, 8), rng.uniform(0, 6), rng.uniform(0, 54)
                pts = [
                    (float(x), self.mm(y0 + amp * math.sin(x / self.ppm / 6 + ph + k))) for x in ys
                ]
                self.draw.line(pts, fill=wave, width=max(1, self.mm(0.2)))
            ink = self.colour(10, 60)
            if rng.random() < 0.5:  # front: photo right, fields left
                px, py = 58.0, 8.0
                self.draw.rectangle(
                    (self.mm(px), self.mm(py), self.mm(px + 22), self.mm(py + 28)),
                    fill=self.colour(200, 250, 0.1),
                )
                face = self.colour(60, 140, 0.2)
                self.draw.ellipse(
                    (self.mm(px + 6), self.mm(py + 4), self.mm(px + 16), self.mm(py + 17)),
                    fill=face,
                )
                self.draw.ellipse(
                    (self.mm(px + 1), self.mm(py + 17), self.mm(px + 21), self.mm(py + 36)),
                    fill=face,
                )
                for row in range(4):
                    self.glyphs(5, 7 + row * 7, 2.6, 2, self.colour(80, 140))
                    self.glyphs(14, 7 + row * 7, 2.8, int(rng.integers(2, 9)), ink)
                self.text(5, 44, 3.5, self.digits(18), ink)
            else:  # back: emblem and title
                self.draw.ellipse(
                    (self.mm(5), self.mm(5), self.mm(22), self.mm(22)),
                    fill=(200, 40, 40),
                    outline=(230, 190, 60),
                    width=self.mm(1),
                )
                self.glyphs(28, 8, 5.5, 8, ink)
                self.glyphs(32, 19, 4, 6, ink)
                self.glyphs(12, 38, 2.8, 12, ink)
                self.glyphs(12, 45, 2.8, 10, ink)
        else:  # social-security or bank card: saturated or dark ground
            paper = tuple(int(v) for v in rng.uniform(10, 200, 3))  # type: ignore[assignment]
            self.fill(paper, tuple(int(v) for v in np.clip(np.array(paper) + 30, 0, 255)))  # type: ignore[arg-type]
            self.draw.rounded_rectangle(
                (self.mm(8), self.mm(18), self.mm(20), self.mm(28)),
                radius=self.mm(1.5),
                fill=(200, 170, 90),
            )
            light = self.colour(200, 255)
            self.glyphs(6, 5, 4.5, 6, light)
            self.text(8, 34, 4.5, " ".join(self.digits(4) for _ in range(4)), light)
            self.glyphs(8, 44, 3, 4, light)
        return paper

    def booklet(self, spread: bool) -> Rgb:
        rng = self.rng
        cover = self.colour(50, 120, 0.05)
        cover = (min(255, cover[0] + 60), cover[1] // 2, cover[2] // 2)
        if rng.random() < 0.3 and not spread:  # closed booklet: the cover itself
            self.fill(cover)
            gold = self.colour(170, 220, 0.15)
            self.draw.ellipse(
                (self.mm(35), self.mm(25), self.mm(70), self.mm(60)),
                outline=gold,
                width=self.mm(1.5),
            )
            self.glyphs(22, 80, 9, 4, gold)
            self.glyphs(38, 100, 4, 4, gold)
            return cover
        page = self.colour(215, 250, 0.06)
        self.fill(cover)
        rim = rng.uniform(1.5, 4.0)
        pages = (self.w / self.ppm - 2 * rim, self.h / self.ppm - 2 * rim)
        self.draw.rectangle(
            (self.mm(rim), self.mm(rim), self.mm(rim + pages[0]), self.mm(rim + pages[1])),
            fill=page,
        )
        ink_table = self.colour(70, 150, 0.3)
        n = 2 if spread else 1
        pw = pages[0] / n
        for i in range(n):
            x0 = rim + i * pw
            self.glyphs(x0 + pw * 0.3, rim + 6, 5, 4, self.colour(20, 60))
            self.table(
                x0 + 6,
                rim + 16,
                pw - 12,
                pages[1] - 26,
                int(rng.integers(6, 14)),
                int(rng.integers(2, 5)),
                ink_table,
            )
            if rng.random() < 0.6:
                self.stamp(
                    x0 + pw * rng.uniform(0.3, 0.7),
                    rim + pages[1] * rng.uniform(0.4, 0.8),
                    rng.uniform(10, 18),
                )
        if spread:
            mid = self.mm(rim + pw)
            for k in range(self.mm(4)):
                shade = 1 - 0.25 * (1 - k / self.mm(4))
                col = tuple(int(c * shade) for c in page)
                top, bottom = self.mm(rim), self.mm(rim + pages[1])
                self.draw.line([(mid - k, top), (mid - k, bottom)], fill=col)
                self.draw.line([(mid + k, top), (mid + k, bottom)], fill=col)
        return page

    def form(self) -> Rgb:
        rng = self.rng
        paper = self.colour(215, 252, 0.04)
        self.fill(paper)
        ink = self.colour(10, 70)
        style = rng.random()
        self.glyphs(60, 15, 7, int(rng.integers(4, 10)), ink)
        if style < 0.5:
            self.table(
                18,
                35,
                174,
                rng.uniform(120, 230),
                int(rng.integers(8, 22)),
                int(rng.integers(2, 6)),
                ink,
            )
        elif style < 0.8:
            self.lines_of_text(20, 35, 170, 3.5, int(rng.integers(15, 50)), ink)
        else:  # a sparse page: little but white
            self.lines_of_text(20, 35, 170, 3.5, int(rng.integers(1, 5)), ink)
        if rng.random() < 0.5:
            self.stamp(rng.uniform(120, 170), rng.uniform(220, 270), rng.uniform(14, 21))
        if rng.random() < 0.5:
            pts = [
                (self.mm(40 + t * 40), self.mm(270 + 5 * math.sin(t * 9)))
                for t in np.linspace(0, 1, 30)
            ]
            self.draw.line(pts, fill=self.colour(10, 80), width=self.mm(0.5))
        return paper

    def diploma(self) -> Rgb:
        rng = self.rng
        w_mm, h_mm = self.w / self.ppm, self.h / self.ppm
        if rng.random() < 0.25:  # hard red cover
            cover = (int(rng.uniform(130, 200)), int(rng.uniform(10, 40)), int(rng.uniform(10, 40)))
            self.fill(cover)
            gold = self.colour(170, 220, 0.15)
            self.glyphs(w_mm * 0.3, h_mm * 0.4, 14, 4, gold)
            return cover
        paper = self.colour(220, 252, 0.07)
        self.fill(paper)
        band = self.colour(90, 200, 0.5)
        inset, width = rng.uniform(4, 15), rng.uniform(4, 12)
        box = (self.mm(inset), self.mm(inset), self.mm(w_mm - inset), self.mm(h_mm - inset))
        self.draw.rectangle(box, outline=band, width=self.mm(width))
        step = width
        for k in range(int((w_mm - 2 * inset) / step)):
            x = inset + k * step
            for y in (inset, h_mm - inset - width):
                self.draw.ellipse(
                    (self.mm(x + 1), self.mm(y + 1), self.mm(x + step - 1), self.mm(y + width - 1)),
                    outline=paper,
                    width=1,
                )
        inner = inset + width + rng.uniform(1, 4)
        self.draw.rectangle(
            (self.mm(inner), self.mm(inner), self.mm(w_mm - inner), self.mm(h_mm - inner)),
            outline=band,
            width=max(1, self.mm(0.4)),
        )
        ink = self.colour(10, 60)
        self.draw.ellipse(
            (
                self.mm(w_mm / 2 - 12),
                self.mm(inner + 6),
                self.mm(w_mm / 2 + 12),
                self.mm(inner + 30),
            ),
            outline=band,
            width=self.mm(1),
        )
        self.glyphs(w_mm / 2 - 40, inner + 36, 12, 6, ink)
        self.lines_of_text(
            inner + 15, inner + 60, w_mm - 2 * inner - 30, 5, int((h_mm - 2 * inner - 90) / 9), ink
        )
        self.stamp(w_mm * 0.7, h_mm - inner - 25, 18)
        return paper


# ---------------------------------------------------------------- backgrounds


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> Float:
    small = rng.random((max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w))))
    return _f32(cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC))


def _grid(h: int, w: int) -> tuple[Float, Float]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx, yy


def _bg_dark_pad(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    base = np.array([rng.uniform(8, 60)] * 3) * (1 + rng.uniform(-0.3, 0.3, 3))
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    img += rng.normal(0, rng.uniform(1, 5), (h, w, 1)).astype(np.float32)
    img *= (0.8 + 0.4 * _smooth_noise(rng, h, w, 4))[..., None]
    if rng.random() < 0.4:  # the pad ends inside the frame, on the table
        table = np.array(_colour_any(rng), np.float32)
        side = rng.integers(4)
        cut = rng.uniform(0.03, 0.12)
        xx, yy = _grid(h, w)
        ang = rng.uniform(-0.05, 0.05)
        dist = [
            xx / w + ang * yy / h,
            1 - xx / w + ang * yy / h,
            yy / h + ang * xx / w,
            1 - yy / h + ang * xx / w,
        ][side]
        img[dist < cut] = table
    return img


def _colour_any(rng: np.random.Generator) -> Float:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _bg_wood(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    xx, yy = _grid(h, w)
    ang = rng.uniform(0, math.pi)
    v = -xx * math.sin(ang) + yy * math.cos(ang)
    warp = _smooth_noise(rng, h, w, 6) * rng.uniform(20, 80)
    freq = rng.uniform(0.02, 0.12)
    grain = 0.5 + 0.5 * np.sin((v + warp) * freq + 3 * _smooth_noise(rng, h, w, 3))
    light = np.array([rng.uniform(90, 200), rng.uniform(60, 150), rng.uniform(30, 90)], np.float32)
    dark = light * rng.uniform(0.45, 0.8)
    img = dark + (light - dark) * grain[..., None] ** rng.uniform(0.5, 2)
    img = np.ascontiguousarray(img[..., ::-1])  # BGR
    img += rng.normal(0, 3, (h, w, 1)).astype(np.float32)
    plank = rng.uniform(80, 260)
    seams = np.abs(((v + 1000) % plank) - plank / 2) > plank / 2 - rng.uniform(1, 3)
    img[seams] *= 0.55
    return img


def _bg_clutter(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    img = np.empty((h, w, 3), np.float32)
    img[:] = _colour_any(rng) * 0.8 + 20
    img *= (0.85 + 0.3 * _smooth_noise(rng, h, w, 3))[..., None]
    img += rng.normal(0, 2, (h, w, 1)).astype(np.float32)
    return img


def _bg_paper_like(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    delta = rng.uniform(3, 28) * rng.choice([-1, 1])
    base = np.array(paper[::-1], np.float32) + delta + rng.uniform(-8, 8, 3)
    img = np.empty((h, w, 3), np.float32)
    img[:] = np.clip(base, 0, 255)
    img *= (0.94 + 0.12 * _smooth_noise(rng, h, w, 5))[..., None]
    img += rng.normal(0, rng.uniform(0.5, 3), (h, w, 1)).astype(np.float32)
    return img


def _bg_gradient(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    xx, yy = _grid(h, w)
    a, b = _colour_any(rng), _colour_any(rng)
    if rng.random() < 0.5:
        ang = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(ang) + yy * math.sin(ang)) / math.hypot(w, h) + 0.5
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy) / math.hypot(w, h)
    t = np.clip(t, 0, 1)[..., None]
    return (a * (1 - t) + b * t).astype(np.float32)


def _bg_pattern(rng: np.random.Generator, w: int, h: int, paper: Rgb) -> Float:
    xx, yy = _grid(h, w)
    ang = rng.uniform(0, math.pi)
    u = xx * math.cos(ang) + yy * math.sin(ang)
    v = -xx * math.sin(ang) + yy * math.cos(ang)
    period = rng.uniform(6, 0.06 * max(w, h))
    a, b = _colour_any(rng), _colour_any(rng)
    b = a + (b - a) * rng.uniform(0.15, 0.6)
    style = rng.integers(3)
    if style == 0:  # checks
        t = ((u // period + v // period) % 2).astype(np.float32)
    elif style == 1:  # stripes
        t = (0.5 + 0.5 * np.sin(u * 2 * math.pi / period)).astype(np.float32)
    else:  # thin grid lines (tiles, cutting mat)
        t = ((np.abs(u % period) < 2) | (np.abs(v % period) < 2)).astype(np.float32)
    img = a * (1 - t[..., None]) + b * t[..., None]
    img += rng.normal(0, 3, (h, w, 1))
    return _f32(cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.8))


_BACKGROUNDS: dict[str, Callable[[np.random.Generator, int, int, Rgb], Float]] = {
    "dark_pad": _bg_dark_pad,
    "wood": _bg_wood,
    "clutter": _bg_clutter,
    "paper_like": _bg_paper_like,
    "gradient": _bg_gradient,
    "pattern": _bg_pattern,
    "white_desk": variety.bg_white_desk,
    "stone": variety.bg_stone,
}


def _draw_clutter(
    rng: np.random.Generator, img: Float, quad: Float, px_per_mm: float, under: bool
) -> None:
    """Desk objects; with ``under=False`` a few lie across the document."""
    h, w = img.shape[:2]
    doc_mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(doc_mask, np.round(quad).astype(np.int32), 1)
    count = int(rng.integers(4, 12)) if under else int(rng.integers(1, 3))
    centre = quad.mean(axis=0)
    for _ in range(count):
        layer = np.zeros((h, w), np.uint8)
        colour = _colour_any(rng)
        shape = rng.choice(["pen", "coin", "phone", "note", "cable", "sheet", "keys"])
        if under:
            pos = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        else:
            pos = centre + rng.uniform(-0.5, 0.5, 2) * (quad.max(axis=0) - quad.min(axis=0))
            shape = rng.choice(["pen", "coin", "cable"])
        ang = rng.uniform(0, math.pi)
        d = np.array([math.cos(ang), math.sin(ang)])
        if shape == "pen":
            length = rng.uniform(100, 150) * px_per_mm
            a, b = pos - d * length / 2, pos + d * length / 2
            cv2.line(
                layer, _pt(a), _pt(b), 1, max(2, round(rng.uniform(6, 10) * px_per_mm)), cv2.LINE_AA
            )
        elif shape == "coin":
            cv2.circle(
                layer, _pt(pos), max(3, round(rng.uniform(9, 40) * px_per_mm)), 1, -1, cv2.LINE_AA
            )
        elif shape in ("phone", "note", "sheet"):
            size = {"phone": (70, 145), "note": (76, 76), "sheet": (210, 297)}[shape]
            sz = np.array(size) * px_per_mm * rng.uniform(0.8, 1.1)
            if shape == "sheet":  # a large paper must leave the frame, or it is a document too
                pos = np.array([rng.choice([-0.3, 1.3]) * w, rng.uniform(0, h)])
                colour = np.array(rng.uniform(190, 250, 3), np.float32)
            box = cv2.boxPoints(
                ((float(pos[0]), float(pos[1])), (float(sz[0]), float(sz[1])), math.degrees(ang))
            )
            cv2.fillConvexPoly(layer, np.round(box).astype(np.int32), 1, cv2.LINE_AA)
            if shape == "phone":
                colour = np.array([rng.uniform(10, 50)] * 3, np.float32)
        elif shape == "cable":
            pts = pos + np.cumsum(rng.normal(0, 40 * px_per_mm, (6, 2)), axis=0)
            cv2.polylines(
                layer,
                [np.round(pts).astype(np.int32)],
                False,
                1,
                max(2, round(3 * px_per_mm)),
                cv2.LINE_AA,
            )
        else:  # keyboard corner: a block of keys entering from a frame edge
            k = max(4, round(15 * px_per_mm))
            x0, y0 = (
                (0, int(rng.uniform(0.6, 0.9) * h))
                if rng.random() < 0.5
                else (int(rng.uniform(0.6, 0.9) * w), 0)
            )
            for i in range(0, w, k + 3):
                for j in range(0, h, k + 3):
                    if (x0 == 0 and j > y0 and i < w * 0.4) or (y0 == 0 and i > x0 and j < h * 0.4):
                        cv2.rectangle(layer, (i, j), (i + k, j + k), 1, -1)
            colour = np.array([rng.uniform(20, 230)] * 3, np.float32)
        m = layer.astype(np.float32)
        if under:
            overlap = (layer & doc_mask).sum() / max(1, doc_mask.sum())
            if overlap > 0:
                continue
        shade = (0.75 + 0.5 * _smooth_noise(rng, h, w, 2))[..., None]
        img[:] = img * (1 - m[..., None]) + (colour * shade) * m[..., None]


def _pt(p: NDArray[Any]) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _cast_shadow(rng: np.random.Generator, back: Float, mask: Float, px_per_mm: float) -> None:
    shift = rng.normal(0, 1.5, 2) * px_per_mm
    m = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
    h, w = mask.shape
    shadow = _f32(cv2.warpAffine(mask, m, (w, h)))
    shadow = _f32(cv2.GaussianBlur(shadow, (0, 0), max(0.5, rng.uniform(0.3, 3) * px_per_mm)))
    back *= (1 - rng.uniform(0.15, 0.6) * shadow)[..., None]


def _draw_fingers(rng: np.random.Generator, img: Float, quad: Float, px_per_mm: float) -> None:
    """One to three fingers entering from outside, crossing a side (or covering a corner)."""
    h, w = img.shape[:2]
    side = int(rng.integers(4))
    a, b = quad[side].astype(np.float64), quad[(side + 1) % 4].astype(np.float64)
    centre = quad.mean(axis=0)
    red = rng.uniform(120, 235)
    green = red * rng.uniform(0.6, 0.85)
    skin = np.array([green * rng.uniform(0.7, 0.95), green, red], np.float32)  # BGR
    along = rng.uniform(0.0, 1.0) if rng.random() < 0.25 else rng.uniform(0.15, 0.85)
    n_fingers = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
    width = rng.uniform(13, 19) * px_per_mm
    for k in range(n_fingers):
        t = np.clip(along + (k - n_fingers / 2) * width * 1.05 / np.linalg.norm(b - a), 0, 1)
        base = a + (b - a) * t
        inward = centre - base
        inward /= np.linalg.norm(inward)
        direction = inward + rng.normal(0, 0.3, 2)
        direction /= np.linalg.norm(direction)
        tip = base + direction * rng.uniform(3, 18) * px_per_mm
        root = base - direction * 150 * px_per_mm
        layer = np.zeros((h, w), np.float32)
        cv2.line(layer, _pt(root), _pt(tip), 1.0, max(2, round(width)), cv2.LINE_AA)
        layer = _f32(cv2.GaussianBlur(layer, (0, 0), max(0.6, 0.4 * px_per_mm)))
        core = cv2.GaussianBlur(layer, (0, 0), max(1.0, width / 4))
        shade = (0.6 + 0.5 * core)[..., None]
        img[:] = img * (1 - layer[..., None]) + skin * shade * layer[..., None]
        nail = np.zeros((h, w), np.float32)
        cv2.circle(
            nail,
            _pt(tip - direction * width * 0.35),
            max(1, round(width * 0.3)),
            1.0,
            -1,
            cv2.LINE_AA,
        )
        img[:] = img * (1 - 0.3 * nail[..., None]) + 240 * 0.3 * nail[..., None]


def _lighting(rng: np.random.Generator, img: Float) -> None:
    h, w = img.shape[:2]
    xx, yy = _grid(h, w)
    ang = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(ang) + yy * math.sin(ang)) / math.hypot(w, h)
    gain = rng.uniform(0.55, 1.0) + rng.uniform(0, 0.6) * (t - t.min())
    cast = 1 + rng.uniform(-0.08, 0.08, 3)
    img *= gain[..., None] * cast.astype(np.float32)


def _soft_shadow(rng: np.random.Generator, img: Float) -> None:
    h, w = img.shape[:2]
    layer = np.zeros((h, w), np.float32)
    centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    pts = centre + rng.normal(0, 0.3, (5, 2)) * np.array([w, h])
    cv2.fillPoly(layer, [cv2.convexHull(np.round(pts).astype(np.int32))], 1.0)
    layer = _f32(cv2.GaussianBlur(layer, (0, 0), rng.uniform(2, 0.05 * w)))
    img *= (1 - rng.uniform(0.2, 0.55) * layer)[..., None]


def _glare(rng: np.random.Generator, img: Float, quad: Float, px_per_mm: float) -> None:
    h, w = img.shape[:2]
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.5:  # on a side, where it hurts most
            s = int(rng.integers(4))
            centre = quad[s] + (quad[(s + 1) % 4] - quad[s]) * rng.uniform(0.2, 0.8)
        else:
            centre = quad.mean(axis=0) + rng.normal(0, 0.25, 2) * (quad.max(0) - quad.min(0))
        axes = rng.uniform(8, 40, 2) * px_per_mm
        layer = np.zeros((h, w), np.float32)
        cv2.ellipse(
            layer,
            (
                (float(centre[0]), float(centre[1])),
                (float(axes[0]), float(axes[1])),
                rng.uniform(0, 180),
            ),
            1.0,
            -1,
        )
        layer = _f32(cv2.GaussianBlur(layer, (0, 0), float(axes.min()) * rng.uniform(0.15, 0.5)))
        img += (rng.uniform(80, 260) * layer)[..., None]


def _optics(rng: np.random.Generator, img: Float, effects: list[str], capture: str) -> Float:
    r = rng.random()
    blur_p = 0.35 if capture == "kiosk" else 0.6
    if r < blur_p / 3:
        sigma = rng.uniform(0.6, 2.5)
        img = _f32(cv2.GaussianBlur(img, (0, 0), sigma))
        effects.append("defocus")
    elif r < 2 * blur_p / 3:
        length = int(rng.integers(3, 16))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = _f32(cv2.warpAffine(kernel, rot, (length, length)))
        img = _f32(cv2.filter2D(img, -1, kernel / kernel.sum()))
        effects.append("motion_blur")
    elif r < blur_p:
        radius = int(rng.integers(2, 6))
        kernel = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
        cv2.circle(kernel, (radius, radius), radius, 1.0, -1, cv2.LINE_AA)
        img = _f32(cv2.filter2D(img, -1, kernel / kernel.sum()))
        effects.append("disk_blur")
    sigma = rng.uniform(0, 7)
    noise = rng.normal(0, sigma, (*img.shape[:2], 1)) + rng.normal(0, sigma / 3, img.shape)
    img = img + noise.astype(np.float32)
    if rng.random() < 0.3:
        gamma = rng.uniform(0.7, 1.4)
        img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** gamma
    return np.clip(img, 0, 255).astype(np.uint8)
