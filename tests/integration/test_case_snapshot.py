"""The clerk's capture from the live stream: a keyframe of the booth's video, decoded by
the server's media, through the same pipeline into the case."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from server import app_keys
from server.app import create_app
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.case_clients import error, served
from tests.integration.test_call_media import _negotiate


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[TestServer]:
    srv: TestServer = await aiohttp_server(create_app(make_settings(tmp_path,
                                                                    document_workers=1)))
    yield srv
    await parties.close_all()


async def test_a_snapshot_of_the_booths_video_lands_in_the_case(server: TestServer) -> None:
    case = await served(server)
    path = f"/api/cases/{case.case_id}/snapshots"
    try:
        status, body = await case.desk.call("POST", path, json={"slot": "id_card_front"})
        assert (status, error(body)) == (503, "snapshot_failed")  # no media negotiated yet

        booth_peer = await _negotiate(case.kiosk, case.session_id)
        clerk_peer = await _negotiate(case.clerk, case.session_id)
        try:
            await clerk_peer.wait_for("video", lambda frames: len(frames) >= 3)
            status, body = await case.desk.call("POST", path, json={"slot": "id_card_front"},
                                                headers={"Idempotency-Key": "snap-1"})
            assert status == 201, body
            document = body["document"]
            assert (document["path"], document["session_id"]) == ("snapshot", case.session_id)
            assert (document["original"]["width"], document["original"]["height"]) == (320,
                                                                                         240)
            assert document["quality"]["verdict"] in ("ok", "retake")
            event = await case.kiosk.next("case.document")
            assert (event["document_id"], event["path"]) == (document["document_id"],
                                                             "snapshot")
            again, replayed = await case.desk.call("POST", path, json={"slot": "id_card_front"},
                                                   headers={"Idempotency-Key": "snap-1"})
            assert (again, replayed["document"]["document_id"]) == (200,
                                                                    document["document_id"])
            status, body = await case.booth.call("POST", path, json={"slot": "id_card_front"})
            assert (status, error(body)) == (403, "forbidden")
        finally:
            await booth_peer.pc.close()
            await clerk_peer.pc.close()
        stored = server.app[app_keys.BLOBS].read(document["original"]["sha256"])
        assert hashlib.sha256(stored).hexdigest() == document["original"]["sha256"]
    finally:
        await case.close()
