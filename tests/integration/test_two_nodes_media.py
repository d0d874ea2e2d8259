"""Media across two nodes, then the media node dies.

The booth waits on node 1 and the clerk who accepts is on node 2, so the session's media
is pinned to node 2 (the accepting clerk's node): the booth's offer reaches node 1 and is
forwarded to node 2 over Redis, node 2's answer comes back through the socket.io Redis
manager, and real aiortc peers exchange frames through node 2's media. A stream snapshot
taken on node 2 lands in the case (PostgreSQL, blobs in the directory both nodes share).
Then node 2 is killed with SIGKILL: node 1 sees its heartbeat expire, ends the session
with ``node_lost``, puts the ticket back at the head of the queue and tells both sides
(the clerk, whose socket died with node 2, hears it on resuming at node 1); the case and
its document are intact and the case stays open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signaling.redis_store import RedisStore, connect
from tests.integration import parties
from tests.integration.case_clients import Http, error
from tests.integration.test_media_relay import make_client
from tests.integration.test_two_nodes import TEACHER, Node, two_nodes

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
NODE_LOST_WAIT_S = 15.0


def _http(node: Node, headers: dict[str, str] | None = None) -> Http:
    return Http(node, headers)  # type: ignore[arg-type]  # needs only make_url


async def _negotiate(party: parties.Party, session_id: str) -> tuple[Any, dict[str, Any]]:
    peer = make_client("VP8")
    ack = await party.ok("webrtc.offer", {"session_id": session_id, "type": "offer",
                                          "sdp": await peer.offer()})
    answer = await party.next("webrtc.answer", wait_s=15.0)
    assert answer["from"] == "server"
    await peer.accept(answer["sdp"])
    return peer, ack


async def test_media_flows_across_nodes_and_a_dead_media_node_requeues_the_ticket(
        tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    async with two_nodes(tmp_path, redis_url, redis_prefix, media_mode="server",
                         shared_data=True) as (node1, node2):
        booth = await parties.kiosk(node1)
        ticket_id = (await booth.ok("queue.join", {"matter": TEACHER}))["ticket"]["ticket_id"]
        clerk = await parties.clerk(node2, "wangli")
        offer = await clerk.next("offer")
        accepted = await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]})
        session_id = accepted["session"]["session_id"]
        assert accepted["session"]["media_node"] == {"id": "node2", "url": node2.url}
        started = await booth.next("session.started")
        assert started["media_node"] == {"id": "node2", "url": node2.url}
        case_id = (await clerk.next("case.opened", wait_s=10.0))["case_id"]

        booth_peer, booth_ack = await _negotiate(booth, session_id)  # forwarded to node 2
        clerk_peer, clerk_ack = await _negotiate(clerk, session_id)  # answered on node 2
        assert (booth_ack.get("forwarded"), "forwarded" in clerk_ack) == ("node2", False)
        desk1, desk2 = _http(node1), _http(node2)
        try:
            await clerk_peer.wait_for("video", lambda frames: len(frames) >= 3)
            await booth_peer.wait_for("audio", lambda frames: len(frames) >= 3)
            await booth.ok("session.connected", {"session_id": session_id})
            path = f"/api/cases/{case_id}/snapshots"
            await desk2.login("wangli")
            status, body = await desk2.call("POST", path, json={"slot": "id_card_front"},
                                            headers={"Idempotency-Key": "snap-1"})
            assert status == 201, body
            document_id = body["document"]["document_id"]
            await desk1.login("wangli")
            status, body = await desk1.call("POST", path, json={"slot": "id_card_front"})
            assert (status, error(body)) == (409, "media_elsewhere")

            node2.kill()
            ended = await booth.until("session.ended", lambda d: True,
                                      wait_s=NODE_LOST_WAIT_S)
            assert (ended["session_id"], ended["reason"], ended["requeued"]) == (
                session_id, "node_lost", True)
            store = RedisStore(connect(redis_url), redis_prefix)
            try:
                record = await store.get_ticket(ticket_id)
            finally:
                await store.close()
            assert record is not None and record.ticket.requeued_at_head

            back = await parties.console(node1, "wangli")
            await back.ok("session.resume", {"last_seq": clerk.last_seq})
            told = await back.next("session.ended")
            assert (told["session_id"], told["reason"]) == (session_id, "node_lost")

            status, body = await desk1.call("GET", f"/api/cases/{case_id}")
            assert status == 200, body
            case = body.get("case", body)
            assert (case["status"], case["closed_at"]) == ("in_progress", None)  # still open
            assert [d["document_id"] for d in case["documents"]] == [document_id]
            status, image = await desk1.call(
                "GET", f"/api/cases/{case_id}/documents/{document_id}/original")
            assert status == 200 and isinstance(image, bytes) and len(image) > 1000
        finally:
            await booth_peer.pc.close()
            await clerk_peer.pc.close()
            await desk1.close()
            await desk2.close()
            await parties.close_all()
