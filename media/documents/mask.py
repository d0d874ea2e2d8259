"""Where the document lies in a frame, coarsely: a small convolutional network's map of the
probability that each cell of a 96 x 72 grid over the frame is document.

The edge cues of ``scoring`` see sides; this sees the whole sheet, so it still holds where a
side fades into a pale desk, glare or a blur, and it does not mistake a table rule, a
checkerboard's rows or a page of newsprint for an outline.  ``detect`` uses it three ways:
its overlap with each candidate is one more ranking cue, its outline is one more region
candidate, and an outline it backs is kept and tried however faint its sides.  Edges still
place the corners: a cell of the map is 6.7 to 20 frame pixels wide.

The network (``document_mask.onnx``, 162 k weights, a 4-level U-Net on 192 x 144 BGR) runs in
OpenCV's DNN module, so nothing but OpenCV is needed at run time.  It was trained on frames of
both bench generators with seeds of their own, never the bench's evaluation seeds (see
``bench/train_document_mask.py`` and docs/operations.md).
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

MODEL_PATH = Path(__file__).with_name("document_mask.onnx")
INPUT_SIZE = (192, 144)  # width, height the frame is squeezed to, whatever its aspect
MAP_SIZE = (96, 72)  # width, height of the probability map
_local = threading.local()  # an OpenCV Net is not safe to share between threads


def _net() -> cv2.dnn.Net:
    net = getattr(_local, "net", None)
    if net is None:
        # OpenCV 5 picks its new engine by default, 2.5x slower on this small network (10.2
        # against 4.1 ms of one core here); OpenCV 4 has only the classic one.
        classic = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        if classic is None:
            net = cv2.dnn.readNetFromONNX(str(MODEL_PATH))
        else:
            net = cv2.dnn.readNetFromONNX(str(MODEL_PATH), engine=classic)
        _local.net = net
    return net


def document_probability(image: NDArray[np.uint8]) -> NDArray[np.float32]:
    """72 x 96 map of P(document) over a BGR frame (any size; it is squeezed to 4:3)."""
    small = cv2.resize(image, INPUT_SIZE, interpolation=cv2.INTER_AREA)
    blob = cv2.dnn.blobFromImage(small, 1.0 / 255.0, mean=(127.5, 127.5, 127.5))
    net = _net()
    net.setInput(blob)
    logit = np.asarray(net.forward(), np.float32).reshape(MAP_SIZE[1], MAP_SIZE[0])
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), np.float32)


def quad_overlap(
    probability: NDArray[np.float32], quads: NDArray[np.float64], shape: tuple[int, int]
) -> NDArray[np.float64]:
    """Soft intersection over union of each quad (N x 4 x 2, in an image of ``shape``) with
    the probability map: 1 where the quad covers exactly the cells the map calls document."""
    mh, mw = probability.shape
    h, w = shape
    scale = np.array([mw / w, mh / h])
    total = float(probability.sum())
    # Fixed point with 4 fractional bits: the map's cells are coarse, so sub-cell position
    # matters for small documents.
    pts = np.round(((quads + 0.5) * scale - 0.5) * 16).astype(np.int32)
    canvas = np.zeros((mh, mw), np.uint8)
    out = np.zeros(len(quads))
    low = np.maximum(pts.min(axis=1) // 16 - 1, 0).tolist()
    high = (pts.max(axis=1) // 16 + 2).tolist()
    for k, quad in enumerate(pts):
        (x0, y0), (x1, y1) = low[k], high[k]
        cv2.fillConvexPoly(canvas, quad, 1, lineType=cv2.LINE_8, shift=4)
        window = canvas[y0:y1, x0:x1]
        area = cv2.countNonZero(window)
        if area:
            inter = cv2.mean(probability[y0:y1, x0:x1], mask=window)[0] * area
            union = total + area - inter
            out[k] = inter / union
        window[:] = 0
    return out
