"""The hostile corpus through the real upload route, as a booth sends it: every refusal
has its own code and leaves no row and no file; what is accepted is re-encoded."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from server import app_keys
from server.app import create_app
from server.storage import tables
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.case_clients import Served, error, served
from tests.unit import hostile_images as hostile

REFUSED: list[tuple[str, Callable[[], bytes], int, str]] = [
    ("png bomb 100 MP", lambda: hostile.png_bomb(10_000, 10_000), 413, "image_too_many_pixels"),
    ("png bomb 400 MP", lambda: hostile.png_bomb(20_000, 20_000), 413, "image_too_many_pixels"),
    ("zTXt bomb", hostile.png_with_ztxt_bomb, 400, "image_decompression_bomb"),
    ("truncated jpeg", hostile.truncated_jpeg, 400, "image_truncated"),
    ("svg", hostile.svg, 415, "image_format_not_allowed"),
    ("tiff", hostile.tiff, 415, "image_format_not_allowed"),
    ("eps", hostile.eps, 415, "image_format_not_allowed"),
    ("empty", lambda: b"", 400, "image_empty"),
    ("25 MB", hostile.too_large_jpeg, 413, "image_too_large"),
]


@pytest.fixture
async def case(tmp_path: Any, aiohttp_server: Any) -> AsyncIterator[Served]:
    settings = make_settings(tmp_path, media_mode="p2p", document_workers=1)
    server: TestServer = await aiohttp_server(create_app(settings))
    opened = await served(server)
    yield opened
    await opened.close()
    await parties.close_all()


async def stored(case: Served) -> tuple[int, int, int, int]:
    """(documents, idempotency keys, blob rows, blob files)."""
    app = case.booth.server.app
    async with app[app_keys.DB].connect() as conn:
        counts = [await conn.scalar(sa.select(sa.func.count()).select_from(t)) for t in
                  (tables.case_documents, tables.case_upload_keys, tables.blobs)]
    files = len(list(app[app_keys.BLOBS].iter_files()))
    return int(counts[0] or 0), int(counts[1] or 0), int(counts[2] or 0), files


async def test_each_hostile_upload_is_refused_with_its_code_and_leaves_nothing(
    case: Served,
) -> None:
    seen = {}
    for index, (name, build, status, code) in enumerate(REFUSED):
        got_status, body = await case.booth.upload(case.case_id, "id_card_front", build(),
                                                   f"hostile-{index}")
        seen[name] = (got_status, error(body) if isinstance(body, dict) else body)
        assert seen[name] == (status, code), name
        assert await stored(case) == (0, 0, 0, 0), name
    tmp = case.booth.server.app[app_keys.BLOBS].tmp
    assert not tmp.exists() or not list(tmp.iterdir())


async def test_what_is_accepted_is_re_encoded_and_a_reused_key_is_refused(
    case: Served,
) -> None:
    smuggler = hostile.jpeg_with_zip()
    status, body = await case.booth.upload(case.case_id, "diploma", smuggler, "zip-1")
    assert status == 201, body
    original = body["document"]["original"]
    assert original["content_type"] == "image/jpeg"
    blobs = case.booth.server.app[app_keys.BLOBS]
    kept = blobs.read(original["sha256"])
    assert kept != smuggler and original["sha256"] != hashlib.sha256(smuggler).hexdigest()
    assert hostile.ZIP_MARKER not in kept

    status, body = await case.booth.upload(case.case_id, "photo", hostile.png(), "png-1",
                                           filename="card.jpg")
    assert status == 201, body  # judged by its magic bytes, not its name: a PNG
    assert body["document"]["original"]["content_type"] == "image/png"
    before = await stored(case)
    assert before[:2] == (2, 2)

    status, body = await case.booth.upload(case.case_id, "photo", hostile.webp(), "png-1")
    assert (status, error(body)) == (409, "idempotency_key_reused")
    assert await stored(case) == before
