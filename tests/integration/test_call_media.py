"""A whole call over the real stack: socket.io signaling, the server's media endpoint
answering each participant, encoded frames reaching the clerk unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from media.endpoint import LocalMediaEndpoint
from server import app_keys
from server.app import create_app
from server.ice import turn_credentials
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.lossy_network import RtpLoss
from tests.integration.parties import Party
from tests.integration.test_media_relay import Client, digest, make_client, sent_digests

TEACHER = "EDU-TQ-CONFIRM"


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[TestServer]:
    srv: TestServer = await aiohttp_server(create_app(make_settings(tmp_path)))
    yield srv
    await parties.close_all()


async def _negotiate(party: Party, session_id: str, codec: str = "VP8") -> Any:
    client = make_client(codec)
    await party.ok("webrtc.offer", {"session_id": session_id, "type": "offer",
                                    "sdp": await client.offer()})
    answer = await party.next("webrtc.answer")
    assert answer["from"] == "server"
    await client.accept(answer["sdp"])
    return client


async def test_the_server_answers_both_sides_and_forwards_frames_unchanged(
    server: TestServer,
) -> None:
    clerk = await parties.clerk(server, "wangli")
    kiosk = await parties.kiosk(server)
    await kiosk.ok("queue.join", {"matter": TEACHER})
    offer = await clerk.next("offer")
    session_id = (await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]}))[
        "session"]["session_id"]
    citizen_peer = await _negotiate(kiosk, session_id)
    clerk_peer = await _negotiate(clerk, session_id)
    try:
        await clerk_peer.wait_for("video", lambda frames: len(frames) >= 10)
        await citizen_peer.wait_for("audio", lambda frames: len(frames) >= 10)
        video = clerk_peer.received["video"]
        assert video[0].keyframe
        assert {digest("VP8", f.data) for f in video} <= sent_digests(citizen_peer.video)

        candidate = await kiosk.ok("webrtc.candidate", {"session_id": session_id,
                                                        "candidate": "candidate:1 1 udp"})
        assert candidate["ignored"] is True
        wrong = await kiosk.call("webrtc.answer", {"session_id": session_id,
                                                   "type": "answer", "sdp": "v=0"})
        assert wrong["error"]["code"] == "unexpected_answer"
        bad = await clerk.call("webrtc.offer", {"session_id": session_id, "type": "offer",
                                                "sdp": "not sdp"})
        assert bad["error"]["code"] == "invalid_sdp"

        await kiosk.ok("session.connected", {"session_id": session_id})
        await clerk.ok("session.end", {"session_id": session_id, "outcome": "completed"})
        await kiosk.next("session.ended")
        media = server.app[app_keys.MEDIA]
        assert isinstance(media, LocalMediaEndpoint)  # in-process: XIAOWU_MEDIA_WORKERS=1
        for _ in range(100):  # media closes in the background after the session ends
            if media.session(session_id) is None:
                break
            await asyncio.sleep(0.05)
        assert media.session(session_id) is None
    finally:
        await citizen_peer.pc.close()
        await clerk_peer.pc.close()


async def _start_call(server: TestServer) -> tuple[Party, Party, str]:
    clerk = await parties.clerk(server, "wangli")
    kiosk = await parties.kiosk(server)
    await kiosk.ok("queue.join", {"matter": TEACHER})
    offer = await clerk.next("offer")
    session_id: str = (await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]}))[
        "session"]["session_id"]
    return kiosk, clerk, session_id


async def test_ice_restart_after_a_network_change_resumes_media_both_ways(
    server: TestServer,
) -> None:
    kiosk, clerk, session_id = await _start_call(server)
    old = await _negotiate(kiosk, session_id)
    clerk_peer = await _negotiate(clerk, session_id)
    media = server.app[app_keys.MEDIA]
    assert isinstance(media, LocalMediaEndpoint)  # in-process: XIAOWU_MEDIA_WORKERS=1
    clerk_leg = media.session(session_id).peer("clerk")  # type: ignore[union-attr]
    new: Client | None = None
    try:
        await clerk_peer.wait_for("video", lambda frames: len(frames) >= 5)
        await old.wait_for("video", lambda frames: len(frames) >= 5)
        RtpLoss(1.0, seed=0).install(old.pc)  # the kiosk's network is gone: nothing arrives
        await asyncio.sleep(0.5)
        before = len(clerk_peer.received["video"])

        new = make_client("VP8")  # aiortc has no iceRestart: a browser would reuse its pc
        await kiosk.ok("webrtc.restart", {"session_id": session_id, "type": "offer",
                                          "sdp": await new.offer()})
        answer = await kiosk.next("webrtc.answer")
        assert answer["restart"] is True and answer["from"] == "server"
        await new.accept(answer["sdp"])

        await clerk_peer.wait_for("video", lambda frames: len(frames) >= before + 10)
        resumed = clerk_peer.received["video"][before:]
        assert resumed[0].keyframe
        assert {digest("VP8", f.data) for f in resumed} <= sent_digests(new.video)
        await new.wait_for("video", lambda frames: len(frames) >= 5)
        assert new.received["video"][0].keyframe
        await new.wait_for("audio", lambda frames: len(frames) >= 5)
        session = media.session(session_id)
        assert session is not None and session.peer("clerk") is clerk_leg  # not renegotiated

        bad = await kiosk.call("webrtc.restart", {"session_id": session_id, "type": "offer",
                                                  "sdp": "not sdp"})
        assert bad["error"]["code"] == "invalid_sdp"
        missing = await kiosk.call("webrtc.restart", {"session_id": session_id})
        assert missing["error"]["code"] == "invalid_payload"
        stranger = await parties.citizen(server, "wx-stranger")
        refused = await stranger.call("webrtc.restart", {"session_id": session_id,
                                                         "type": "offer", "sdp": "v=0"})
        assert refused["error"]["code"] == "not_in_session"
    finally:
        for client in (old, clerk_peer, new):
            if client is not None:
                await client.pc.close()


async def test_ice_servers_come_with_expiring_turn_credentials(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    settings = make_settings(tmp_path, stun_urls=["stun:turn.example.gov.cn:3478"],
                             turn_urls=["turn:turn.example.gov.cn:3478?transport=udp"],
                             turn_secret="coturn-shared-secret", turn_ttl_s=600)
    client = await aiohttp_client(create_app(settings))
    refused = await client.get("/api/ice")
    assert refused.status == 401
    await parties.add_clerk(client.app, "wangli")
    await client.post("/api/auth/login", json={"username": "wangli",
                                               "password": parties.PASSWORD})
    body = await (await client.get("/api/ice")).json()
    stun, turn = body["iceServers"]
    assert stun == {"urls": ["stun:turn.example.gov.cn:3478"]}
    expiry, _, subject = turn["username"].partition(":")
    assert subject == "clerk:wangli"
    assert turn["credential"] == turn_credentials("coturn-shared-secret", "clerk:wangli",
                                                  600, now=int(expiry) - 600)[1]
    assert body["media"] == "server"
