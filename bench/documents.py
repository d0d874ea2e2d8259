"""Benchmark of document localisation on synthetic frames, against the textbook recipe.

    .venv/bin/python bench/documents.py [--frames N] [--empty E] [--scenes M]
                                        [--scenes-empty F] [--seed S]

Scores ``media.documents.detect_quad`` and the usual OpenCV tutorial recipe (grey, blur,
Canny, largest contour whose polygon approximation has four points) on the same frames with
the SmartDoc 2015 challenge 1 metric (Jaccard index in the true document's rectified frame;
a miss scores 0), on one core.  Frames come from two independently written generators,
``synthetic_documents`` (N documents, E empty desks) and ``synthetic_scenes`` (M and F), so
that a detector tuned on one is caught out by the other; each is reported apart and together.
Empty desks (no document) are scored apart: a None there is a hit, a quad a false positive;
the combined mean counts a hit as 1 and a false positive as 0.  Prints per-category means,
overall figures and, last, one JSON line whose ``mean_ji`` and ``baseline_mean_ji`` are over
all document frames and ``median_ms`` the median CPU time per frame of this process (immune
to other processes' load, unlike the wall times also printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.synthetic_documents import SyntheticFrame, make_empty_frames, make_frames
from bench.synthetic_scenes import make_empty_scenes, make_scenes
from media.documents import detect_quad
from media.documents.geometry import document_frame_iou

Detector = Callable[[NDArray[np.uint8]], NDArray[np.float32] | None]


def textbook_quad(image: NDArray[np.uint8]) -> NDArray[np.float32] | None:
    """The tutorial recipe: resize to 500 rows, grey, 5x5 blur, Canny 75/200, then the
    largest of the five biggest contours whose approxPolyDP (2 % of perimeter) has 4 points."""
    ratio = image.shape[0] / 500.0
    small = cv2.resize(image, (round(image.shape[1] / ratio), 500))
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    edged = cv2.Canny(grey, 75, 200)
    contours, _ = cv2.findContours(edged, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    for c in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        approx = cv2.approxPolyDP(c, 0.02 * cv2.arcLength(c, True), True)
        if len(approx) == 4:
            return np.asarray((approx.reshape(4, 2) + 0.5) * ratio - 0.5, np.float32)
    return None


def run(
    frames: int, seed: int, empty: int = 0, scenes: int = 0, scenes_empty: int = 0
) -> dict[str, object]:
    cv2.setNumThreads(1)
    methods: dict[str, Detector] = {"ours": detect_quad, "textbook": textbook_quad}
    scores: dict[str, list[float]] = {m: [] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    cpu: dict[str, list[float]] = {m: [] for m in methods}  # immune to other processes' load
    cells: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    warm = np.zeros((480, 640, 3), np.uint8)
    for detect in methods.values():  # first calls pay for lazy initialisation in OpenCV
        detect(warm)
    false_positives: dict[str, int] = {m: 0 for m in methods}
    by_generator: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # Chained generators: frames are made one at a time, never all held in memory.
    documents: Iterator[tuple[str, SyntheticFrame]] = chain(
        (("documents", f) for f in make_frames(frames, seed)),
        (("scenes", f) for f in make_scenes(scenes, seed)),
    )
    empties: Iterator[tuple[str, SyntheticFrame]] = chain(
        (("documents", f) for f in make_empty_frames(empty, seed)),
        (("scenes", f) for f in make_empty_scenes(scenes_empty, seed)),
    )
    for generator, frame in documents:
        assert frame.quad is not None
        for name, detect in methods.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            quad = detect(frame.image)
            times[name].append((time.perf_counter() - start) * 1000.0)
            cpu[name].append((time.process_time() - start_cpu) * 1000.0)
            score = 0.0 if quad is None else document_frame_iou(quad, frame.quad)
            scores[name].append(score)
            by_generator[generator][name].append(score)
            cells[(frame.kind, frame.background)][name].append(score)
    for _, frame in empties:
        for name, detect in methods.items():
            found = detect(frame.image) is not None
            false_positives[name] += found
            cells[(frame.kind, frame.background)][name].append(0.0 if found else 1.0)
    empty += scenes_empty

    print(f"{'kind':<9} {'background':<11} {'n':>3} {'ours':>7} {'textbook':>9}")
    for (kind, background), per in sorted(cells.items()):
        n = len(per["ours"])
        print(
            f"{kind:<9} {background:<11} {n:>3} {np.mean(per['ours']):>7.4f} "
            f"{np.mean(per['textbook']):>9.4f}"
        )
    for generator, per in sorted(by_generator.items()):
        print(
            f"generator {generator:<10} {len(per['ours']):>4} frames  ours "
            f"{np.mean(per['ours']):.4f}  textbook {np.mean(per['textbook']):.4f}"
        )
    summary: dict[str, object] = {
        "mean_ji": round(float(np.mean(scores["ours"])), 4),
        "baseline_mean_ji": round(float(np.mean(scores["textbook"])), 4),
        "median_ms": round(float(np.median(cpu["ours"])), 2),
        "mean_ji_by_generator": {
            g: round(float(np.mean(per["ours"])), 4) for g, per in sorted(by_generator.items())
        },
        "frames": len(scores["ours"]),
        "seed": seed,
    }
    for name in methods:
        s, t = scores[name], times[name]
        mean, median = float(np.mean(s)), float(statistics.median(s))
        misses = sum(1 for v in s if v == 0.0)
        median_ms, p95_ms = float(np.median(t)), float(np.percentile(t, 95))
        cpu_ms = float(np.median(cpu[name]))
        hits = empty - false_positives[name]
        summary[name] = {
            "mean_jaccard": round(mean, 4),
            "median_jaccard": round(median, 4),
            "misses": misses,
            "median_ms": round(median_ms, 2),
            "p95_ms": round(p95_ms, 2),
            "median_cpu_ms": round(cpu_ms, 2),
            "empty_frames": empty,
            "false_positives": false_positives[name],
            "mean_with_empty": round((sum(s) + hits) / (len(s) + empty), 4),
        }
        print(
            f"{name:<9} mean {mean:.4f}  median {median:.4f}  misses {misses}"
            f"  {median_ms:.1f} ms median  {p95_ms:.1f} ms p95  ({cpu_ms:.1f} ms CPU median)"
            f"  false positives {false_positives[name]}/{empty} empty desks"
        )
    ratio = float(np.mean(scores["ours"])) / max(float(np.mean(scores["textbook"])), 1e-9)
    time_ratio = float(np.median(times["ours"])) / max(float(np.median(times["textbook"])), 1e-9)
    summary["ours_over_textbook"] = {
        "mean_jaccard": round(ratio, 3),
        "median_ms": round(time_ratio, 2),
    }
    print(f"ours / textbook: mean Jaccard x{ratio:.3f}, median time x{time_ratio:.2f}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=312, help="frames to generate (312)")
    parser.add_argument("--empty", type=int, default=36, help="empty desks to add (36)")
    parser.add_argument(
        "--scenes", type=int, default=120, help="frames of the second generator (120)"
    )
    parser.add_argument("--scenes-empty", type=int, default=18, help="its empty desks (18)")
    parser.add_argument("--seed", type=int, default=2015, help="seed of the frame set (2015)")
    args = parser.parse_args()
    print(json.dumps(run(args.frames, args.seed, args.empty, args.scenes, args.scenes_empty)))


if __name__ == "__main__":
    main()
