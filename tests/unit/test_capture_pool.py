"""The pipeline's worker pool: refusals come back as error codes, a dead worker costs one
capture and not the pool."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

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


_KILLED_SERVER = """
import asyncio
from multiprocessing import forkserver

from server.capture_pool import CapturePool


async def main() -> None:
    pool = CapturePool(2)
    await pool.warm()
    pids = [*pool._executor._processes, forkserver._forkserver._forkserver_pid]
    print("PIDS", *pids, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_and_forkserver_end_when_the_server_is_killed() -> None:
    """SIGKILL gives the server no chance to shut its pool down; its workers and the
    forkserver must not live on (each crash used to leave three processes behind)."""
    repo = Path(__file__).resolve().parents[2]
    server = subprocess.Popen([sys.executable, "-c", _KILLED_SERVER], cwd=repo,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = ""
        while not line.startswith("PIDS"):  # log lines come first
            line = server.stdout.readline()
            assert line, "the server ended before its pool was ready"
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) == 3 and all(_running(p) for p in pids)
    finally:
        server.kill()
        server.wait()
    deadline = time.monotonic() + 60  # a liveness bound, not a timing claim
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if _running(p)] == []
