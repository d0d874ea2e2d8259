"""Cases over HTTP with a real queue: opened by the accept, filled from the booth, edited,
completed, rated and exported, with each caller seeing only what is theirs."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from server import app_keys
from server.app import create_app
from server.citizen_tokens import mint
from server.http_support import token_policy
from server.storage import tables
from server.storage.types import utcnow
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.case_clients import Http, Served, error, served
from tests.unit.document_photos import document_frame, jpeg_of

ID_NUMBER = "11010519491231002X"
MASKED = "1101**********002X"


@pytest.fixture
async def server(tmp_path: Any, aiohttp_server: Any) -> AsyncIterator[TestServer]:
    settings = make_settings(tmp_path, media_mode="p2p", document_workers=1, grace_s=0.5,
                             wrap_up_s=0.2)
    srv: TestServer = await aiohttp_server(create_app(settings))
    yield srv
    await parties.close_all()


@pytest.fixture
async def case(server: TestServer) -> AsyncIterator[Served]:
    opened = await served(server)
    yield opened
    await opened.close()


def card_photo(seed: int = 1) -> bytes:
    frame, _ = document_frame(640, 404, size=(1024, 768), seed=seed)
    return jpeg_of(frame)


async def rows(server: TestServer, table: sa.Table) -> list[Any]:
    async with server.app[app_keys.DB].connect() as conn:
        return list(await conn.execute(sa.select(table)))


async def test_the_accept_opens_a_draft_case_both_sides_can_read(
    server: TestServer, case: Served,
) -> None:
    assert (await case.kiosk.next("case.opened"))["number"] == case.number
    assert case.number.startswith("DY-20") and case.number.endswith("-000001")

    status, body = await case.booth.call("GET", f"/api/sessions/{case.session_id}/case")
    assert status == 200, body
    view = body["case"]
    assert (view["case_id"], view["status"], view["you"]) == (case.case_id, "draft", "citizen")
    assert [s["key"] for s in view["checklist"]][:2] == ["id_card_front", "id_card_back"]
    assert "notes" not in view

    status, body = await case.desk.call("GET", f"/api/cases/{case.case_id}")
    assert status == 200 and body["case"]["you"] == "clerk" and "notes" in body["case"]
    actions = [r.action for r in await rows(server, tables.audit_log)]
    assert actions.count("case.open") == 1 and actions.count("case.read") == 2

    status, body = await case.desk.call("POST", f"/api/cases/{case.case_id}/snapshots",
                                        json={"slot": "id_card_front"})
    assert (status, error(body)) == (409, "snapshot_unavailable")  # p2p: no server media


async def test_an_upload_fills_its_slot_and_a_retry_never_makes_a_second_document(
    server: TestServer, case: Served,
) -> None:
    photo = card_photo()
    status, body = await case.booth.upload(case.case_id, "id_card_front", photo, "key-1")
    assert status == 201, body
    document = body["document"]
    assert body["status"] == "in_progress" and body["replayed"] is False
    assert document["path"] == "upload" and document["session_id"] == case.session_id
    assert document["quality"]["verdict"] in ("ok", "retake")
    assert document["original"]["sha256"] != hashlib.sha256(photo).hexdigest()
    event = await case.clerk.next("case.document")
    assert (event["document_id"], event["slot"]) == (document["document_id"], "id_card_front")
    assert event["verdict"] == document["quality"]["verdict"]
    assert (await case.kiosk.next("case.document"))["document_id"] == document["document_id"]

    again_status, again = await case.booth.upload(case.case_id, "id_card_front", photo, "key-1")
    assert (again_status, again["replayed"]) == (200, True)
    assert again["document"]["document_id"] == document["document_id"]
    other_status, other = await case.booth.upload(case.case_id, "id_card_front",
                                                  card_photo(2), "key-1")
    assert (other_status, error(other)) == (409, "idempotency_key_reused")
    missing_status, missing = await case.booth.upload(case.case_id, "id_card_front", photo,
                                                      None)
    assert (missing_status, error(missing)) == (400, "idempotency_key_required")
    unknown_status, unknown = await case.booth.upload(case.case_id, "passport", photo, "k2")
    assert (unknown_status, error(unknown)) == (400, "slot_unknown")

    assert len(await rows(server, tables.case_documents)) == 1
    blob_files = list(server.app[app_keys.BLOBS].iter_files())
    assert len(blob_files) == 2
    status, processed = await case.desk.call(
        "GET", document["processed"]["url"])
    assert status == 200
    assert hashlib.sha256(processed).hexdigest() == document["processed"]["sha256"]


async def test_the_clerk_edits_waives_and_completes_and_the_number_stays_masked(
    server: TestServer, case: Served,
) -> None:
    path = f"/api/cases/{case.case_id}"
    status, body = await case.desk.call("PATCH", path, json={"id_number": "110105194912310021"})
    assert (status, error(body)) == (400, "id_number_invalid")
    status, body = await case.desk.call("PATCH", path, json={
        "applicant_name": "付宇航", "id_number": ID_NUMBER.lower(), "notes": "原件已核"})
    assert status == 200, body
    assert (body["case"]["id_number"], body["case"]["status"]) == (ID_NUMBER, "in_progress")

    status, listed = await case.desk.call("GET", "/api/cases")
    assert status == 200 and listed["cases"][0]["id_number"] == MASKED
    status, seen = await case.booth.call("GET", path)
    assert seen["case"]["id_number"] == MASKED and "notes" not in seen["case"]

    status, body = await case.desk.call("POST", f"{path}/status", json={"status": "completed"})
    assert (status, error(body)) == (409, "checklist_incomplete")
    missing = body["error"]["detail"]["missing"]
    assert missing == ["id_card_front", "id_card_back", "household_register", "diploma",
                       "photo"]
    status, _ = await case.booth.upload(case.case_id, "id_card_front", card_photo(), "k1")
    assert status == 201
    for slot in missing[1:]:
        status, body = await case.desk.call("PUT", f"{path}/slots/{slot}/waiver",
                                            json={"reason": "已联网核验 verified online"})
        assert status == 200, body
    status, body = await case.desk.call("POST", f"{path}/status", json={
        "status": "completed", "outcome": "准予认定"})
    assert status == 200, body
    assert body["case"]["status"] == "completed" and body["case"]["complete"] is True
    assert body["case"]["closed_at"] is not None

    status, body = await case.desk.call("PATCH", path, json={"notes": "too late"})
    assert (status, error(body)) == (409, "case_closed")
    status, body = await case.booth.upload(case.case_id, "diploma", card_photo(), "k9")
    assert (status, error(body)) == (409, "case_closed")

    audit_text = json.dumps([[r.action, r.object_id, r.detail]
                             for r in await rows(server, tables.audit_log)], ensure_ascii=False)
    assert ID_NUMBER not in audit_text and MASKED in audit_text


async def test_each_caller_sees_only_what_is_theirs(server: TestServer, case: Served) -> None:
    path = f"/api/cases/{case.case_id}"
    await parties.add_clerk(server.app, "zhao")
    await parties.add_clerk(server.app, "zhang", role="supervisor")
    other = await Http(server).login("zhao")
    boss = await Http(server).login("zhang")
    stranger = Http(server, {"Authorization": "Bearer " + mint(
        token_policy(server.app), "someone-else", ttl_s=600)})
    try:
        status, body = await other.call("GET", path)
        assert (status, error(body)) == (403, "not_assigned")
        assert (await other.call("GET", "/api/cases"))[1]["cases"] == []
        status, body = await boss.call("GET", path)
        assert status == 200 and body["case"]["you"] == "supervisor"
        assert len((await boss.call("GET", "/api/cases"))[1]["cases"]) == 1
        status, body = await boss.call("PATCH", path, json={"notes": "x"})
        assert (status, error(body)) == (403, "forbidden")
        status, body = await stranger.call("GET", path)
        assert (status, error(body)) == (404, "case_not_found")
        status, body = await stranger.call("GET", f"/api/sessions/{case.session_id}/case")
        assert (status, error(body)) == (404, "case_not_found")
        status, body = await case.booth.call("PATCH", path, json={"notes": "x"})
        assert (status, error(body)) == (403, "forbidden")
        status, body = await case.booth.call("GET", "/api/cases")
        assert (status, error(body)) == (403, "forbidden")
    finally:
        for client in (other, boss, stranger):
            await client.close()
    denied = [r for r in await rows(server, tables.audit_log) if r.outcome == "denied"]
    assert {r.detail["code"] for r in denied} == {"not_assigned", "forbidden",
                                                  "case_not_found"}


async def test_after_the_call_the_booth_rates_once_then_loses_sight_of_the_case(
    server: TestServer, case: Served,
) -> None:
    path = f"/api/cases/{case.case_id}"
    status, body = await case.desk.call("POST", f"{path}/rating", json={"score": 5})
    assert (status, error(body)) == (403, "forbidden")
    await case.kiosk.ok("session.leave", {"session_id": case.session_id})
    await case.kiosk.next("session.ended")
    for _ in range(50):  # the end hook runs in the background
        status, body = await case.booth.call("POST", f"{path}/rating", json={
            "score": 4, "reason": "耐心"})
        if status != 404:
            break
    assert status == 201, body
    status, body = await case.booth.call("POST", f"{path}/rating", json={"score": 1})
    assert (status, error(body)) == (409, "already_rated")
    status, body = await case.booth.upload(case.case_id, "id_card_front", card_photo(), "k")
    assert (status, error(body)) == (404, "case_not_found")  # no uploads after the call
    await case.kiosk.ok("queue.join", {"matter": "HRSS-SSC-APPLY"})  # the next citizen
    status, body = await case.booth.call("GET", path)
    assert (status, error(body)) == (404, "case_not_found")
    status, body = await case.desk.call("GET", path)
    assert body["case"]["rating"] == 4 and body["case"]["rating_reason"] == "耐心"


async def add_recording(server: TestServer, session_id: str, duration_s: float) -> str:
    """A recorded segment of the session that began now, as the recorder stores one."""
    async with server.app[app_keys.DB].begin() as conn:
        await conn.execute(sa.insert(tables.recording_consents).values(
            id="rc_1", session_id=session_id, participant="kiosk:x", granted=True,
            at=utcnow()))
        await conn.execute(sa.insert(tables.recordings).values(
            id="rec_1", session_id=session_id, consent_id="rc_1", segment_index=0,
            path=f"{session_id}/0-0.webm", sha256="ab" * 32, duration_s=duration_s,
            size_bytes=1000, container="webm", codecs="VP8+opus", tracks=["video"],
            started_at=utcnow() - timedelta(seconds=1), created_at=utcnow()))
    return "rec_1"


async def test_the_export_is_a_zip_of_every_image_with_a_manifest_of_hashes(
    server: TestServer, case: Served,
) -> None:
    recording_id = await add_recording(server, case.session_id, duration_s=600)
    for key, slot, seed in (("a", "id_card_front", 1), ("b", "id_card_back", 2),
                            ("c", "diploma", 3)):
        status, _ = await case.booth.upload(case.case_id, slot, card_photo(seed), key)
        assert status == 201
    await case.desk.call("PATCH", f"/api/cases/{case.case_id}", json={"id_number": ID_NUMBER})

    url = case.desk.url(f"/api/cases/{case.case_id}/export")
    async with case.desk.session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/zip"
        assert response.headers["X-Export-Files"] == "7"
        archive = await response.read()
        assert int(response.headers["Content-Length"]) == len(archive)

    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.testzip() is None
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["case"]["number"] == case.number
        assert manifest["case"]["id_number"] == ID_NUMBER
        assert [r["recording_id"] for r in manifest["recordings"]] == [recording_id]
        where = manifest["documents"][0]["recording"]
        assert where["recording_id"] == recording_id and 1 <= where["offset_s"] < 600
        assert [d["slot"] for d in manifest["documents"]] == ["id_card_front", "id_card_back",
                                                              "diploma"]
        for document in manifest["documents"]:
            for variant in ("original", "processed"):
                entry = document[variant]
                assert hashlib.sha256(zf.read(entry["file"])).hexdigest() == entry["sha256"]
        assert len(zf.namelist()) == 7
    status, body = await case.desk.call("GET", f"/api/cases/{case.case_id}")
    assert body["case"]["documents"][0]["recording"] == where
    assert body["case"]["documents"][0]["recording_offset_s"] == where["offset_s"]
    exports = [r for r in await rows(server, tables.audit_log) if r.action == "case.export"]
    assert len(exports) == 1 and exports[0].detail["bytes"] == len(archive)

    blob = server.app[app_keys.BLOBS].path_for(manifest["documents"][0]["original"]["sha256"])
    blob.write_bytes(b"tampered")
    async with case.desk.session.get(url) as response:
        assert response.status == 500
        assert (await response.json())["error"]["code"] == "blob_corrupt"
