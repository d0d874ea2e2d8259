"""Fake cameras for Chromium: .y4m files it loops as its capture device.

Chromium's ``--use-file-for-fake-video-capture`` reads a YUV4MPEG2 file (4:2:0) and
plays it in a loop, one file per browser process. The kiosk's camera shows an identity
card on a dark desk; the clerk's shows a plain "face" pattern. Each file has a few
frames with a moving marker so that a stream is never a still picture.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT, FPS = 640, 480, 15
FRAMES = 8
CARD_MM = (85.6, 54.0)
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in CJK_FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def id_card(width: int = 856) -> NDArray[np.uint8]:
    """A resident identity card's photo side, schematically, at ``width`` px (BGR)."""
    height = round(width * CARD_MM[1] / CARD_MM[0])
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    card = (np.array([236, 226, 246], np.float32) * (1 - ramp)
            + np.array([246, 240, 214], np.float32) * ramp)
    picture = Image.fromarray(np.repeat(card, height, axis=0).astype(np.uint8)[..., ::-1])
    draw = ImageDraw.Draw(picture)
    for i in range(0, width, 24):  # guilloche-like background lines
        draw.arc((i - 300, -200, i + 300, height + 200), 200, 340, fill=(200, 200, 215), width=1)
    unit = width / 856
    label, text = _font(round(26 * unit)), _font(round(30 * unit))
    lines = [("姓名", "付宇航"), ("性别", "男    民族  汉"), ("出生", "1990 年 1 月 1 日"),
             ("住址", "山东省东营市东营区"), ("", "南一路 228 号")]
    for row, (key, value) in enumerate(lines):
        y = round((48 + row * 64) * unit)
        draw.text((round(50 * unit), y), key, font=label, fill=(40, 90, 160))
        draw.text((round(140 * unit), y), value, font=text, fill=(20, 20, 20))
    draw.text((round(50 * unit), round(440 * unit)), "公民身份号码", font=label,
              fill=(40, 90, 160))
    draw.text((round(250 * unit), round(436 * unit)), "370502199001011233", font=text,
              fill=(20, 20, 20))
    box = (round(600 * unit), round(60 * unit), round(800 * unit), round(330 * unit))
    draw.rectangle(box, fill=(250, 250, 250))
    draw.ellipse((box[0] + 50 * unit, box[1] + 40 * unit, box[2] - 50 * unit,
                  box[1] + 150 * unit), fill=(90, 90, 90))
    draw.ellipse((box[0] + 20 * unit, box[1] + 160 * unit, box[2] - 20 * unit,
                  box[3] + 60 * unit), fill=(90, 90, 90))
    return np.asarray(picture)[..., ::-1].copy()


def document_frame(width: int = WIDTH, height: int = HEIGHT) -> NDArray[np.uint8]:
    """An ID card lying flat, slightly turned, covering about half of a dark desk (BGR)."""
    card = id_card()
    ch, cw = card.shape[:2]
    w = 0.74 * width
    h = w * ch / cw
    angle = math.radians(4.0)
    c, s = math.cos(angle), math.sin(angle)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    quad = (corners @ np.array([[c, s], [-s, c]]) + [width / 2, height / 2]).astype(np.float32)
    source = np.array([[0, 0], [cw, 0], [cw, ch], [0, ch]], np.float32)
    matrix = cv2.getPerspectiveTransform(source, quad)
    rounded = np.zeros((ch, cw), np.uint8)
    radius = round(cw * 3.2 / CARD_MM[0])
    cv2.rectangle(rounded, (radius, 0), (cw - radius, ch), 255, -1)
    cv2.rectangle(rounded, (0, radius), (cw, ch - radius), 255, -1)
    for x, y in ((radius, radius), (cw - radius, radius), (radius, ch - radius),
                 (cw - radius, ch - radius)):
        cv2.circle(rounded, (x, y), radius, 255, -1)
    warped = cv2.warpPerspective(card, matrix, (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(rounded, matrix, (width, height)).astype(np.float32)[..., None]
    desk = np.empty((height, width, 3), np.float32)
    desk[:] = (38, 44, 52)
    desk += np.linspace(0, 14, height, dtype=np.float32)[:, None, None]
    frame = desk * (1 - mask / 255) + warped.astype(np.float32) * (mask / 255)
    return np.clip(frame, 0, 255).astype(np.uint8)


def face_frame(width: int = WIDTH, height: int = HEIGHT) -> NDArray[np.uint8]:
    """A clerk at a desk, schematically: a wall, a head and shoulders (BGR)."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (200, 190, 175)
    cv2.ellipse(frame, (width // 2, height), (width // 3, height // 4), 0, 180, 360,
                (110, 70, 40), -1)
    cv2.ellipse(frame, (width // 2, height * 2 // 5), (width // 9, height // 6), 0, 0, 360,
                (150, 180, 225), -1)
    cv2.putText(frame, "XIAOWU CLERK", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (60, 60, 60), 2)
    return frame


def write_y4m(path: Path, frame: NDArray[np.uint8], frames: int = FRAMES, fps: int = FPS) -> Path:
    """Write ``frames`` copies of a BGR picture, each with a marker moved along the
    bottom edge, as a 4:2:0 YUV4MPEG2 file."""
    height, width = frame.shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            picture = frame.copy()
            x = int((i + 0.5) * width / frames)
            cv2.circle(picture, (x, height - 12), 6, (0, 200, 255), -1)
            yuv = cv2.cvtColor(picture, cv2.COLOR_BGR2YUV_I420)
            out.write(b"FRAME\n")
            out.write(yuv.tobytes())
    return path
