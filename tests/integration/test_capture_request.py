"""capture.request / capture.reply: the console asks the citizen's page for a still."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from tests.conftest import make_settings
from tests.integration import parties


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[TestServer]:
    srv: TestServer = await aiohttp_server(create_app(make_settings(tmp_path)))
    yield srv
    await parties.close_all()


async def test_the_request_reaches_the_citizen_and_the_reply_the_clerk(
    server: TestServer,
) -> None:
    clerk = await parties.clerk(server, "wangli")
    kiosk = await parties.kiosk(server)
    await kiosk.ok("queue.join", {"matter": "HPF-DEPOSIT-CERT"})
    offer = await clerk.next("offer")
    session_id = (await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]}))[
        "session"]["session_id"]

    ack = await clerk.ok("capture.request", {"session_id": session_id, "slot": "id_card_front"})
    request = await kiosk.next("capture.request")
    assert request == {"session_id": session_id, "slot": "id_card_front",
                       "request_id": ack["request_id"]}
    assert "seq" not in request  # not replayed after a reconnect
    await kiosk.ok("capture.reply", {"session_id": session_id,
                                     "request_id": ack["request_id"], "ok": True})
    assert await clerk.next("capture.reply") == {
        "session_id": session_id, "request_id": ack["request_id"], "ok": True}

    bad = await clerk.call("capture.request", {"session_id": session_id, "slot": "../x"})
    assert (bad["error"]["code"], bad["error"]["detail"]["field"]) == ("invalid_payload", "slot")
    not_ok = await kiosk.call("capture.reply", {"session_id": session_id,
                                                "request_id": "cap_1", "ok": "yes"})
    assert not_ok["error"]["code"] == "invalid_payload"
    stranger = await parties.clerk(server, "liuyang")
    refused = await stranger.call("capture.request", {"session_id": session_id,
                                                      "slot": "id_card_front"})
    assert refused["error"]["code"] == "not_in_session"
    wrong_side = await kiosk.call("capture.request", {"session_id": session_id,
                                                      "slot": "id_card_front"})
    assert wrong_side["error"]["code"] == "unknown_event"
