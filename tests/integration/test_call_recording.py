"""Recording over the real stack: nothing without the citizen's consent, consent stored
and audited first, a withdrawal stops the recorder, every segment file becomes a
``recordings`` row with its SHA-256 and duration."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from media.endpoint import LocalMediaEndpoint
from server import app_keys
from server.app import create_app
from server.recordings import list_recordings
from server.storage import tables
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.test_call_media import _negotiate, _start_call

NOTICE = "rec-notice-2026-11"


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[TestServer]:
    srv: TestServer = await aiohttp_server(create_app(make_settings(tmp_path,
                                                                    recording_segment_s=4.0)))
    yield srv
    await parties.close_all()


async def audit_actions(server: TestServer, session_id: str) -> list[tuple[str, str]]:
    table = tables.audit_log
    async with server.app[app_keys.DB].connect() as conn:
        rows = (await conn.execute(sa.select(table.c.action, table.c.outcome)
                                   .where(table.c.object_id == session_id)
                                   .order_by(table.c.id))).all()
    return [(row.action, row.outcome) for row in rows if row.action.startswith("recording.")]


async def recordings_of(server: TestServer, session_id: str) -> list[dict[str, Any]]:
    async with server.app[app_keys.DB].connect() as conn:
        return await list_recordings(conn, session_id)


async def test_recording_needs_consent_and_every_segment_is_recorded(
    server: TestServer,
) -> None:
    kiosk, clerk, session_id = await _start_call(server)
    citizen_peer = await _negotiate(kiosk, session_id)
    clerk_peer = await _negotiate(clerk, session_id)
    root = server.app[app_keys.SETTINGS].recordings_dir
    session = {"session_id": session_id}
    try:
        await clerk_peer.wait_for("video", lambda frames: len(frames) >= 5)
        refused = await clerk.call("recording.start", session)
        assert refused["error"]["code"] == "recording_consent_required"
        assert not root.exists()

        loose = await kiosk.call("consent.recording", {**session, "granted": "yes"})
        assert loose["error"]["code"] == "invalid_payload"
        by_clerk = await clerk.call("consent.recording", {**session, "granted": True})
        assert by_clerk["error"]["code"] == "unknown_event"
        stranger = await parties.citizen(server, "wx-stranger")
        outsider = await stranger.call("consent.recording", {**session, "granted": True})
        assert outsider["error"]["code"] == "not_in_session"

        given = await kiosk.ok("consent.recording", {**session, "granted": True,
                                                     "notice": NOTICE})
        heard = await clerk.next("consent.recording")
        assert heard["consent_id"] == given["consent_id"] and heard["granted"] is True
        started = await clerk.ok("recording.start", session)
        assert started["state"] == "recording"
        assert started["consent_id"] == given["consent_id"]
        assert (await kiosk.next("recording.state"))["state"] == "recording"
        again = await clerk.call("recording.start", session)
        assert again["error"]["code"] == "recording_state_invalid"

        await asyncio.sleep(2.0)
        withdrawn = await kiosk.ok("consent.recording", {**session, "granted": False})
        assert withdrawn["granted"] is False
        assert (await clerk.next("consent.recording"))["granted"] is False
        stopped = await clerk.next("recording.state")
        assert stopped["state"] == "stopped" and stopped["reason"] == "consent_withdrawn"
        assert stopped["segments"] >= 1
        after = await clerk.call("recording.start", session)
        assert after["error"]["code"] == "recording_consent_required"

        first_take = await recordings_of(server, session_id)
        assert len(first_take) == stopped["segments"]
        for row in first_take:
            path = root / row["path"]
            assert row["consent_id"] == given["consent_id"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
            assert row["size_bytes"] == path.stat().st_size
            assert row["container"] == "webm" and row["codecs"] == "VP8+opus"
            assert "citizen-video-0" in row["tracks"] and row["duration_s"] > 0
            with av.open(str(path)) as container:
                assert any(True for _ in container.decode(video=0))

        regiven = await kiosk.ok("consent.recording", {**session, "granted": True})
        await clerk.ok("recording.start", session)
        await asyncio.sleep(1.0)
        await kiosk.ok("session.connected", session)
        await clerk.ok("session.end", {**session, "outcome": "completed"})
        media = server.app[app_keys.MEDIA]
        assert isinstance(media, LocalMediaEndpoint)  # in-process: XIAOWU_MEDIA_WORKERS=1
        for _ in range(100):  # the session's media ends (and its recorder stops) meanwhile
            if media.session(session_id) is None:
                break
            await asyncio.sleep(0.05)
        second_take = (await recordings_of(server, session_id))[len(first_take):]
        assert second_take and {r["consent_id"] for r in second_take} == {regiven["consent_id"]}
        assert all(Path(r["path"]).name.startswith(f"{session_id}-t1-") for r in second_take)
        assert not set(Path(r["path"]).name for r in first_take) & set(
            Path(r["path"]).name for r in second_take)

        actions = await audit_actions(server, session_id)
        assert actions[:2] == [("recording.consent", "granted"), ("recording.start", "success")]
        assert ("recording.consent", "refused") in actions
        assert actions.count(("recording.segment", "success")) == len(first_take) + len(
            second_take)
        assert ("recording.stop", "success") in actions
    finally:
        await citizen_peer.pc.close()
        await clerk_peer.pc.close()
