"""The capture pipeline: decode -> find -> straighten to the material's shape -> judge -> encode."""

from __future__ import annotations

import hashlib
import io
import json
import pickle

import numpy as np
import pytest
from PIL import Image

from media.documents.pipeline import process_frame, process_upload, rectify_options
from media.documents.rectify import estimate_aspect
from media.intake import ImageRejected
from tests.unit import hostile_images as hostile
from tests.unit.document_photos import document_frame, jpeg_of

ID_RATIO = 85.6 / 54.0


def box_overlap(quad: object, truth: object) -> float:
    """Intersection over union of the two quads' bounding boxes: whether the pipeline
    reports corners in the frame's own pixels (how exact they are is detect_quad's
    business, scored by bench/documents.py)."""
    a, b = np.asarray(quad, float).reshape(4, 2), np.asarray(truth, float).reshape(4, 2)
    low, high = np.maximum(a.min(0), b.min(0)), np.minimum(a.max(0), b.max(0))
    inter = float(np.prod(np.clip(high - low, 0, None)))
    area = float(np.prod(a.max(0) - a.min(0)) + np.prod(b.max(0) - b.min(0)))
    return inter / (area - inter)


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_an_id_card_is_found_straightened_to_its_real_shape_and_judged() -> None:
    frame, truth = document_frame(640, 404)
    upload = jpeg_of(frame)

    capture = process_upload(upload, "id_card_front")

    assert capture.quad is not None
    assert box_overlap(capture.quad, truth) > 0.8  # the frame's own coordinates
    processed = capture.processed
    assert processed.width / processed.height == pytest.approx(ID_RATIO, rel=0.01)
    assert capture.aspect_source == "physical"
    assert capture.quality.px_per_mm == pytest.approx(processed.width / 85.6)
    assert capture.quality.verdict == "ok", capture.quality
    image = decoded(processed.data)
    assert (image.format, image.size) == ("JPEG", (processed.width, processed.height))
    assert processed.sha256 == hashlib.sha256(processed.data).hexdigest()
    assert processed.size == len(processed.data)


def test_the_original_is_the_whole_frame_re_encoded_never_the_uploaded_bytes() -> None:
    frame, _ = document_frame(640, 404)
    exif = Image.Exif()
    exif[0x0110] = hostile.EXIF_SECRET
    upload = jpeg_of(frame, exif=exif.tobytes())

    original = process_upload(upload, "id_card_back").original

    assert original.data != upload
    assert original.sha256 != hashlib.sha256(upload).hexdigest()
    assert hostile.EXIF_SECRET.encode() not in original.data
    assert (original.width, original.height, original.content_type) == (1280, 960, "image/jpeg")
    assert decoded(original.data).size == (1280, 960)


def test_a_png_stays_a_png_original_and_is_accepted_whatever_its_name() -> None:
    frame, _ = document_frame(500, 700, size=(800, 900))
    out = io.BytesIO()
    Image.fromarray(frame[:, :, ::-1]).save(out, "PNG")
    capture = process_upload(out.getvalue(), "form")
    assert capture.original.content_type == "image/png"
    assert capture.original.extension == "png"
    assert capture.processed.content_type == "image/jpeg"


def test_a_catalogue_aspect_ratio_sets_a_free_shape_documents_proportions() -> None:
    frame, _ = document_frame(420, 594, size=(900, 1000))  # portrait A-series sheet
    capture = process_upload(jpeg_of(frame), "other", aspect_ratio=0.707)
    assert capture.aspect_source == "catalogue"
    assert capture.processed.width / capture.processed.height == pytest.approx(0.707, rel=0.01)
    assert capture.quality.px_per_mm is None


def test_without_a_known_shape_the_ratio_is_estimated_from_the_quad() -> None:
    frame, _ = document_frame(600, 420, tilt=0.0)
    capture = process_upload(jpeg_of(frame), "diploma")
    assert capture.aspect_source == "estimated"
    assert capture.quad is not None
    assert capture.processed.width / capture.processed.height == pytest.approx(
        estimate_aspect(np.array(capture.quad)), rel=0.01)


def test_no_document_keeps_the_whole_frame_and_asks_for_a_retake() -> None:
    rng = np.random.default_rng(3)
    empty = rng.normal(90, 4, (480, 640, 3)).clip(0, 255).astype(np.uint8)

    capture = process_upload(jpeg_of(empty), "id_card_front")

    assert capture.quad is None
    assert capture.aspect_source == "none"
    assert (capture.processed.width, capture.processed.height) == (640, 480)
    assert capture.quality.verdict == "retake"
    assert capture.quality.prompts == ("no_document",)
    report = capture.quality_json()
    assert report["prompt_texts"][0]["code"] == "no_document"
    assert report["prompt_texts"][0]["zh"].startswith("把证件")
    assert report["quad"] is None


def test_a_tiny_image_is_no_document_rather_than_an_error() -> None:
    capture = process_upload(hostile.jpeg(20, 16), "photo")
    assert capture.quad is None and capture.quality.verdict == "retake"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "image_empty"),
    (hostile.svg(), "image_format_not_allowed"),
    (hostile.truncated_jpeg(), "image_truncated"),
    (hostile.png_bomb(10_000, 10_000), "image_too_many_pixels"),
])
def test_a_refused_upload_raises_its_own_code(data: bytes, code: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        process_upload(data, "id_card_front")
    assert caught.value.code == code


def test_the_byte_and_pixel_caps_are_the_callers() -> None:
    data = hostile.jpeg(100, 100)
    with pytest.raises(ImageRejected, match="limit is 100"):
        process_upload(data, "photo", max_bytes=100)
    with pytest.raises(ImageRejected) as caught:
        process_upload(data, "photo", max_pixels=9_999)
    assert caught.value.code == "image_too_many_pixels"


def test_a_stream_frame_runs_the_same_steps() -> None:
    frame, truth = document_frame(640, 404, size=(1280, 720))

    capture = process_frame(frame, "id_card_front")

    assert capture.original.content_type == "image/jpeg"
    assert (capture.original.width, capture.original.height) == (1280, 720)
    assert capture.quad is not None
    assert box_overlap(capture.quad, truth) > 0.8
    with pytest.raises(ValueError, match="H x W x 3"):
        process_frame(frame[:, :, 0], "id_card_front")


def test_a_capture_crosses_a_process_boundary_and_its_report_is_json() -> None:
    frame, _ = document_frame(640, 404)
    capture = process_upload(jpeg_of(frame), "id_card_front")
    assert pickle.loads(pickle.dumps(capture)) == capture  # noqa: S301 (our own bytes)
    text = json.dumps(capture.quality_json())
    assert json.loads(text)["verdict"] == capture.quality.verdict


def test_rectify_options_prefer_the_physical_size() -> None:
    assert rectify_options("id_card_front", 2.0) == ({"physical_mm": (85.6, 54.0)}, "physical")
    assert rectify_options("other", 0.5) == ({"aspect_ratio": 2.0}, "catalogue")
    assert rectify_options("diploma", None) == ({}, "estimated")
    with pytest.raises(ValueError, match="positive"):
        rectify_options("other", 0.0)
