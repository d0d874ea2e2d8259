"""The pipeline's worker pool: refusals come back as error codes, a dead worker costs one
capture and not the pool."""

from __future__ import annotations

import multiprocessing
import os
from functools import partial

import pytest

from server.capture_pool import CapturePool
from server.errors import XiaowuError
from tests.unit import hostile_images as hostile
from tests.unit.document_photos import document_frame, jpeg_of


async def test_captures_and_refusals_cross_the_process_boundary() -> None:
    pool = CapturePool(1)
    try:
        frame, _ = document_frame(640, 404, size=(960, 720))
        capture = await pool.upload(jpeg_of(frame), "id_card_front", aspect_ratio=None,
                                    max_bytes=1 << 20, max_pixels=1 << 20)
        assert capture.quad is not None
        with pytest.raises(XiaowuError) as caught:
            await pool.upload(hostile.svg(), "id_card_front", aspect_ratio=None,
                              max_bytes=1 << 20, max_pixels=1 << 20)
        assert (caught.value.code, caught.value.status) == ("image_format_not_allowed", 415)
        assert (await pool.frame(frame, "diploma", aspect_ratio=None)).quad is not None
    finally:
        await pool.close()


async def test_a_worker_that_dies_fails_one_capture_and_the_next_gets_a_fresh_pool() -> None:
    pool = CapturePool(1)
    try:
        with pytest.raises(XiaowuError) as caught:
            await pool._run(partial(os._exit, 3))
        assert (caught.value.code, caught.value.detail) == ("capture_failed",
                                                            {"reason": "worker_died"})
        capture = await pool.upload(hostile.jpeg(), "photo", aspect_ratio=None,
                                    max_bytes=1 << 20, max_pixels=1 << 20)
        assert capture.original.content_type == "image/jpeg"
    finally:
        await pool.close()


async def test_warm_starts_every_worker_before_the_first_capture() -> None:
    before = {p.pid for p in multiprocessing.active_children()}
    pool = CapturePool(2)
    try:
        await pool.warm()
        started = {p.pid for p in multiprocessing.active_children()} - before
        assert len(started) == 2
        capture = await pool.upload(hostile.jpeg(), "photo", aspect_ratio=None,
                                    max_bytes=1 << 20, max_pixels=1 << 20)
        assert capture.processed.sha256
        assert {p.pid for p in multiprocessing.active_children()} - before == started
    finally:
        await pool.close()
