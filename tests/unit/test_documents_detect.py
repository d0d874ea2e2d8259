"""Document localisation: corner order, the SmartDoc metric, detection on seeded frames."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from bench.synthetic_documents import SyntheticFrame, make_empty_frames, make_frames
from bench.synthetic_scenes import make_scenes
from media.documents import detect_quad
from media.documents.candidates import hough_lines
from media.documents.detect import to_try
from media.documents.edges import edge_maps
from media.documents.geometry import document_frame_iou, order_corners, polygon_area
from media.documents.interior import INTERIOR_FEATURES, interior_features, print_density
from media.documents.rim import widen_to_rim
from media.documents.scoring import FEATURES, WEIGHTS, score


def _rectangle(
    width: float, height: float, degrees: float, centre: tuple[float, float]
) -> NDArray[np.float64]:
    """TL, TR, BR, BL of a rectangle turned clockwise on screen by ``degrees``."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    corners = np.array([[-width, -height], [width, -height], [width, height], [-width, height]]) / 2
    return np.asarray(corners @ np.array([[c, s], [-s, c]]) + np.array(centre), np.float64)


@pytest.mark.parametrize("degrees", [0.0, 12.0, -30.0, 44.0])
def test_order_corners_keeps_own_top_left_below_45_degrees(degrees: float) -> None:
    quad = _rectangle(300, 200, degrees, (400, 300))
    shuffled = quad[[2, 0, 3, 1]]
    np.testing.assert_allclose(order_corners(shuffled), quad, atol=1e-3)


def test_order_corners_of_a_quarter_turn_starts_top_left_on_screen() -> None:
    quad = _rectangle(300, 200, 90.0, (400, 300))  # the document's own TL is now top right
    ordered = order_corners(quad)
    np.testing.assert_allclose(ordered, quad[[3, 0, 1, 2]], atol=1e-3)
    assert ordered[0, 0] < ordered[1, 0] and ordered[0, 1] < ordered[3, 1]


def test_order_corners_of_upside_down_document_is_screen_order() -> None:
    quad = _rectangle(300, 200, 180.0, (400, 300))
    np.testing.assert_allclose(order_corners(quad), quad[[2, 3, 0, 1]], atol=1e-3)


def test_order_corners_of_a_perspective_quad() -> None:
    quad = np.array([[120.0, 80.0], [520.0, 110.0], [560.0, 420.0], [60.0, 380.0]])
    np.testing.assert_allclose(order_corners(quad[::-1]), quad)
    np.testing.assert_allclose(order_corners(np.roll(quad, 1, axis=0)), quad)


def test_order_corners_rejects_other_counts() -> None:
    with pytest.raises(ValueError, match="order_corners needs 4 points, got 3"):
        order_corners(np.zeros((3, 2)))


def test_identical_quad_scores_one_in_any_corner_order() -> None:
    truth = np.array([[100.0, 50.0], [500.0, 80.0], [520.0, 400.0], [80.0, 380.0]])
    assert document_frame_iou(truth, truth) == pytest.approx(1.0)
    assert document_frame_iou(np.roll(truth, 2, axis=0), truth) == pytest.approx(1.0)
    assert document_frame_iou(truth[::-1], truth) == pytest.approx(1.0)


def test_shifted_rectangle_scores_its_overlap() -> None:
    truth = _rectangle(100, 100, 0.0, (50, 50))
    shifted = truth + np.array([10.0, 0.0])
    assert document_frame_iou(shifted, truth) == pytest.approx(9000 / 11000)
    half = truth + np.array([50.0, 50.0])
    assert document_frame_iou(half, truth) == pytest.approx(2500 / 17500)


def test_metric_is_measured_in_the_document_frame() -> None:
    """A prediction shifted by 10 % of the page in the rectified frame scores 0.9 / 1.1
    whatever the perspective, though its overlap in the image is different."""
    truth = np.array([[200.0, 100.0], [440.0, 120.0], [600.0, 460.0], [40.0, 440.0]], np.float32)
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    to_image = cv2.getPerspectiveTransform(square, truth)
    moved = cv2.perspectiveTransform((square + np.array([0.0, 0.1], np.float32))[None], to_image)[0]
    assert document_frame_iou(moved, truth) == pytest.approx(0.9 / 1.1, abs=1e-4)
    image_iou = _raster_iou(moved, truth)
    assert abs(image_iou - 0.9 / 1.1) > 0.02


def test_disjoint_quad_scores_zero() -> None:
    truth = _rectangle(100, 100, 0.0, (50, 50))
    assert document_frame_iou(truth + 300.0, truth) == 0.0


def _raster_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    masks = []
    for quad in (a, b):
        m = np.zeros((600, 700), np.uint8)
        cv2.fillPoly(m, [np.round(np.asarray(quad) * 8).astype(np.int32)], 1, shift=3)
        masks.append(m.astype(bool))
    return float((masks[0] & masks[1]).sum() / (masks[0] | masks[1]).sum())


def test_polygon_area_of_a_rectangle() -> None:
    assert polygon_area(_rectangle(30, 20, 33.0, (0, 0))) == pytest.approx(600.0)


@pytest.mark.parametrize(
    ("frames", "floor"),
    [(make_frames, 0.95), (make_scenes, 0.85)],
    ids=["synthetic_documents", "synthetic_scenes"],
)
def test_detects_documents_on_seeded_frames(
    frames: Callable[[int, int], Iterator[SyntheticFrame]], floor: float
) -> None:
    """A regression gate on a dozen frames of each generator (the bench scores hundreds)."""
    scores = []
    for frame in frames(12, 424242):
        assert frame.quad is not None  # these generators draw documents only
        quad = detect_quad(frame.image)
        assert quad is None or (quad.shape == (4, 2) and quad.dtype == np.float32)
        scores.append(0.0 if quad is None else document_frame_iou(quad, frame.quad))
    assert float(np.mean(scores)) >= floor, np.round(scores, 3).tolist()


def test_detected_corners_come_top_left_first() -> None:
    frame = next(iter(make_frames(1, seed=5)))
    quad = detect_quad(frame.image)
    assert quad is not None
    np.testing.assert_array_equal(quad, order_corners(quad))


@pytest.mark.parametrize("shape", [(480, 640, 3), (1080, 1920, 3)])
def test_blank_and_noise_frames_have_no_document(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(3)
    assert detect_quad(np.full(shape, 200, np.uint8)) is None
    assert detect_quad(rng.integers(0, 256, shape, dtype=np.uint8)) is None
    grain = np.clip(rng.normal(128, 20, shape), 0, 255).astype(np.uint8)
    assert detect_quad(grain) is None


def test_rejects_non_uint8_image() -> None:
    with pytest.raises(ValueError, match="expects a uint8 BGR image, got dtype float32"):
        detect_quad(np.zeros((480, 640, 3), np.float32))


@pytest.mark.parametrize("shape", [(480, 640), (480, 640, 4), (480, 640, 1)])
def test_rejects_images_that_are_not_three_channel(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"expects an H x W x 3 BGR image, got shape"):
        detect_quad(np.zeros(shape, np.uint8))


def test_rejects_tiny_images_and_non_arrays() -> None:
    with pytest.raises(ValueError, match="at least 32 x 32"):
        detect_quad(np.zeros((16, 640, 3), np.uint8))
    with pytest.raises(ValueError, match="expects a numpy array, got list"):
        detect_quad([[0, 0, 0]])  # type: ignore[arg-type]


def _booklet(rim: int) -> tuple[NDArray[np.uint8], NDArray[np.float64], NDArray[np.float64]]:
    """A white page inside a red cover ``rim`` pixels wide on a dark pad: image, the page's
    outline and the cover's."""
    image = np.full((480, 640, 3), 25, np.uint8)
    cv2.rectangle(image, (100, 80), (499, 399), (40, 40, 170), -1)
    cv2.rectangle(image, (100 + rim, 80 + rim), (499 - rim, 399 - rim), (235, 240, 245), -1)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), 1.0), np.uint8)

    def outline(inset: int) -> NDArray[np.float64]:
        x0, y0, x1, y1 = 99.5 + inset, 79.5 + inset, 499.5 - inset, 399.5 - inset
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])

    return image, outline(rim), outline(0)


@pytest.mark.parametrize("rim", [4, 9])
def test_page_outline_widens_to_the_cover_edge(rim: int) -> None:
    image, page, cover = _booklet(rim)
    np.testing.assert_allclose(widen_to_rim(image, page), cover, atol=0.75)


def test_cover_outline_stays_where_it_is() -> None:
    image, _, cover = _booklet(6)
    np.testing.assert_allclose(widen_to_rim(image, cover), cover)


def test_empty_desks_have_no_quad_in_the_ground_truth() -> None:
    frames = list(make_empty_frames(3, seed=1))
    assert [f.quad for f in frames] == [None, None, None]
    assert {f.kind for f in frames} == {"none"}


def _sheet_on(
    desk: NDArray[np.uint8], quad: NDArray[np.float64], paper: tuple[int, int, int]
) -> NDArray[np.uint8]:
    """A sheet of the given colour, with a few lines of print, laid on ``desk`` at ``quad``."""
    image = desk.copy()
    cv2.fillConvexPoly(image, np.round(quad * 16).astype(np.int32), paper, cv2.LINE_AA, 4)
    centre = quad.mean(axis=0)
    for k in range(6):
        a = centre + (quad[0] - centre) * 0.6 + (quad[1] - quad[0]) * 0.1
        a = a + (quad[3] - quad[0]) * (0.1 + 0.1 * k)
        b = a + (quad[1] - quad[0]) * 0.5
        cv2.line(image, _point(a), _point(b), (40, 40, 40), 2, cv2.LINE_AA)
    return np.asarray(cv2.GaussianBlur(image, (0, 0), 0.8), np.uint8)


def _point(p: NDArray[np.float64]) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def test_document_on_newsprint_keeps_its_sides() -> None:
    """Dense print on the desk makes hundreds of strong lines in its own direction; the
    document's sides in the other directions must still be among the lines kept."""
    desk = np.full((240, 426, 3), 205, np.uint8)
    rng = np.random.default_rng(8)
    for y in range(2, 240, 5):
        for x in range(-int(rng.integers(0, 24)), 426, 24):
            if rng.random() < 0.9:
                cv2.line(desk, (x, y), (x + int(rng.integers(16, 22)), y), (60, 60, 60), 2)
    quad = _rectangle(100, 140, 11.0, (280, 120))
    image = desk.copy()
    cv2.fillConvexPoly(image, np.round(quad * 16).astype(np.int32), (238, 236, 232), cv2.LINE_AA, 4)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), 0.8), np.uint8)
    lines = hough_lines(edge_maps(image, 8.0, 16.0), 18)
    for k in (1, 3):  # the sides across the print's direction
        a, b = quad[k], quad[(k + 1) % 4]
        off = [
            max(abs(math.cos(t) * p[0] + math.sin(t) * p[1] - r) for p in (a, b)) for r, t in lines
        ]
        assert min(off) < 2.0, k


def _phone(image: NDArray[np.uint8], centre: tuple[float, float], degrees: float) -> None:
    """A black phone lying on the desk: a clean outline around one flat dark colour."""
    box = cv2.boxPoints((centre, (150.0, 300.0), degrees))
    cv2.fillConvexPoly(image, np.round(box).astype(np.int32), (18, 18, 20), cv2.LINE_AA)


def test_a_phone_on_an_empty_desk_is_not_a_document() -> None:
    desk = np.full((720, 1280, 3), (70, 120, 160), np.uint8)
    _phone(desk, (640.0, 360.0), 20.0)
    image = np.asarray(cv2.GaussianBlur(desk, (0, 0), 0.8), np.uint8)
    assert detect_quad(image) is None


def test_the_document_beside_a_phone_is_found() -> None:
    desk = np.full((720, 1280, 3), (70, 120, 160), np.uint8)
    _phone(desk, (1050.0, 360.0), 10.0)
    quad = _rectangle(340, 460, 3.0, (480, 360))
    image = _sheet_on(desk, quad, (236, 238, 240))
    found = detect_quad(image)
    assert found is not None
    assert document_frame_iou(found, quad) > 0.95


def test_interior_cues_tell_print_from_a_flat_dark_outline() -> None:
    image = np.full((300, 400, 3), (70, 120, 160), np.uint8)
    cv2.rectangle(image, (20, 20), (180, 280), (18, 18, 20), -1)  # a phone
    cv2.rectangle(image, (220, 20), (380, 280), (236, 238, 240), -1)  # a printed sheet
    for y in range(40, 270, 14):
        cv2.line(image, (235, y), (365, y), (40, 40, 40), 2)
    maps = edge_maps(image, 8.0, 16.0)
    quads = np.array(
        [
            [[20, 20], [180, 20], [180, 280], [20, 280]],
            [[220, 20], [380, 20], [380, 280], [220, 280]],
        ],
        np.float64,
    )
    values = interior_features(maps, print_density(maps), quads).T
    cues = dict(zip(INTERIOR_FEATURES, values, strict=True))
    assert cues["print"][0] < 0.1 and cues["print"][1] == pytest.approx(1.0)
    assert cues["blank_dark"][0] > 0.6 and cues["blank_dark"][1] < 0.05


def test_candidates_below_the_line_are_passed_over_not_the_end() -> None:
    """``nesting`` may put an outline first that scores below the no-document line; the
    better-scoring ones after it are still tried."""
    assert to_try(np.array([-6.8, -2.3, -2.4, 1.0])) == [1, 2, 3]
    assert to_try(np.array([3.0, -9.0, 2.0, 1.0, 0.5])) == [0, 2, 3]
    assert to_try(np.array([-7.0, -8.0])) == []


def test_an_outline_past_the_frame_edge_scores_lower() -> None:
    feats = np.tile(np.linspace(0.2, 0.8, len(FEATURES)), (2, 1))
    margin = FEATURES.index("margin")
    feats[0, margin], feats[1, margin] = 0.0, -0.5
    inside_frame, past_edge = score(feats)
    linear = feats @ WEIGHTS
    assert inside_frame - past_edge > linear[0] - linear[1] + 2.0
