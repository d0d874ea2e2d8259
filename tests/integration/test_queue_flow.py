"""The queue end to end over real socket.io: kiosks and clerks through offers, sessions,
drops and resumes, with short timers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer

from server import app_keys
from server.app import create_app
from server.settings import DEFAULT_CONFIG_DIR
from server.storage import tables
from tests.conftest import make_settings
from tests.integration import parties
from tests.integration.parties import Party

TEACHER = "EDU-TQ-CONFIRM"


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[TestServer]:
    settings = make_settings(tmp_path, offer_timeout_s=0.6, wrap_up_s=0.3, grace_s=0.6,
                             media_mode="p2p")
    srv: TestServer = await aiohttp_server(create_app(settings))
    yield srv
    await parties.close_all()


async def _accept(clerk: Party) -> tuple[str, dict[str, object]]:
    offer = await clerk.next("offer")
    result = await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]})
    return str(offer["offer_id"]), result["session"]


async def test_join_offer_accept_signal_complete_and_wrap_up(server: TestServer) -> None:
    kiosk = await parties.kiosk(server)
    joined = await kiosk.ok("queue.join", {"matter": TEACHER})
    ticket = joined["ticket"]
    assert ticket["position"] == 1
    assert ticket["estimate_minutes"] is None
    assert ticket["estimate_text"].startswith("暂无可用工作人员")

    clerk = await parties.clerk(server, "wangli")
    offer = await clerk.next("offer")
    assert offer["ticket_id"] == ticket["ticket_id"]
    assert offer["matter"]["code"] == TEACHER
    assert offer["hut"]["id"] == "dy-hall-01"
    assert offer["presence"] == "offered"
    assert (await kiosk.until("queue.update", lambda d: d["state"] == "offered"))

    accepted = await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]})
    session_id = accepted["session"]["session_id"]
    started = await kiosk.next("session.started")
    assert started["session_id"] == session_id
    assert started["clerk"]["display_name"] == "Wangli"
    assert started["role"] == "citizen" and started["seq"] == 1
    assert "presence" not in started
    assert (await clerk.next("session.started"))["presence"] == "busy"
    assert {m["kind"] for m in started["materials"]} >= {"id_card_front", "diploma"}

    await clerk.ok("webrtc.offer", {"session_id": session_id, "type": "offer", "sdp": "v=0 x"})
    relayed = await kiosk.next("webrtc.offer")
    assert (relayed["sdp"], relayed["from"]) == ("v=0 x", "clerk")
    await kiosk.ok("webrtc.answer", {"session_id": session_id, "type": "answer", "sdp": "v=0 y"})
    assert (await clerk.next("webrtc.answer"))["sdp"] == "v=0 y"
    await kiosk.ok("webrtc.candidate", {"session_id": session_id, "candidate": "candidate:1",
                                        "sdpMid": "0", "sdpMLineIndex": 0})
    assert (await clerk.next("webrtc.candidate"))["sdpMid"] == "0"

    await kiosk.ok("session.connected", {"session_id": session_id})
    assert (await clerk.next("session.state"))["state"] == "active"
    await clerk.ok("session.end", {"session_id": session_id, "outcome": "completed"})
    ended = await kiosk.next("session.ended")
    assert ended["outcome"] == "completed"
    assert "presence" not in ended  # the clerk's state is the clerk's business
    clerk_ended = await clerk.next("session.ended")
    assert (clerk_ended["presence"], clerk_ended["wrap_up_s"]) == ("wrap_up", 0.3)
    # Each step of the call told the clerk's state inside the step's own event, not twice.
    told = [d["state"] for d in clerk.drain("presence")]
    assert not {"offered", "busy", "wrap_up"} & set(told), told
    assert (await clerk.until("presence", lambda d: d["state"] == "available"))["reason"] == \
        "wrap_up_elapsed"

    await server.app[app_keys.JOURNAL].flush()
    async with server.app[app_keys.DB].connect() as conn:
        row = (await conn.execute(sa.select(tables.service_sessions))).one()
        transitions = [tuple(r) for r in await conn.execute(
            sa.select(tables.clerk_events.c.old, tables.clerk_events.c.new)
            .order_by(tables.clerk_events.c.id))]
        ticket_row = (await conn.execute(sa.select(tables.queue_tickets))).one()
    assert (row.outcome, row.state, row.clerk) == ("completed", "ended", "wangli")
    assert row.wait_s is not None and row.wait_s >= 0
    assert row.handle_s is not None and row.handle_s >= 0
    assert transitions == [("offline", "available"), ("available", "offered"),
                           ("offered", "busy"), ("busy", "wrap_up"), ("wrap_up", "available")]
    assert ticket_row.close_reason == "session_completed"


async def test_decline_goes_to_the_next_clerk_and_two_misses_mean_away(
    server: TestServer,
) -> None:
    first = await parties.clerk(server, "aaa")
    await asyncio.sleep(0.05)
    second = await parties.clerk(server, "bbb")
    kiosk = await parties.kiosk(server)
    await kiosk.ok("queue.join", {"matter": TEACHER})
    offer = await first.next("offer")  # longest idle first
    await first.ok("offer.decline", {"offer_id": offer["offer_id"], "reason": "lunch"})
    again = await second.next("offer")
    assert again["ticket_id"] == offer["ticket_id"]
    assert (await first.next("offer.withdrawn"))["reason"] == "declined"

    # bbb lets it time out; aaa already declined it but is the only one left at work
    timed_out = await second.until("offer.withdrawn", lambda d: True)
    assert timed_out["reason"] == "timeout"
    third = await first.next("offer")
    await first.ok("offer.decline", {"offer_id": third["offer_id"]})
    away = await first.until("presence", lambda d: d["state"] == "away")
    assert away["reason"] == "declined"


async def test_a_clerk_cannot_accept_another_clerks_offer(server: TestServer) -> None:
    owner = await parties.clerk(server, "owner")
    other = await parties.clerk(server, "other", available=False)
    kiosk = await parties.kiosk(server)
    await kiosk.ok("queue.join", {"matter": TEACHER})
    offer = await owner.next("offer")
    refused = await other.call("offer.accept", {"offer_id": offer["offer_id"]})
    assert refused["error"]["code"] == "not_assigned"
    outsider = await other.call("webrtc.offer", {"session_id": offer["offer_id"],
                                                 "type": "offer", "sdp": "v=0"})
    assert outsider["error"]["code"] == "not_in_session"
    await owner.ok("offer.accept", {"offer_id": offer["offer_id"]})
    outsider = await other.call("webrtc.offer", {"session_id": offer["offer_id"],
                                                 "type": "offer", "sdp": "v=0"})
    assert outsider["error"]["code"] == "not_in_session"
    stranger = await parties.kiosk(server)
    nosy = await stranger.call("webrtc.candidate", {"session_id": offer["offer_id"],
                                                    "candidate": "x"})
    assert nosy["error"]["code"] == "not_in_session"


async def test_a_kiosk_cannot_send_clerk_events(server: TestServer) -> None:
    kiosk = await parties.kiosk(server)
    for event in ("offer.accept", "presence.set", "session.end", "queue.pause"):
        result = await kiosk.call(event, {"offer_id": "s_1"})
        assert result["error"]["code"] == "unknown_event", event


async def test_malformed_payloads_get_error_acks_and_the_socket_survives(
    server: TestServer,
) -> None:
    kiosk = await parties.kiosk(server)
    cases = [
        ("queue.join", {}, "invalid_payload", "matter"),
        ("queue.join", {"matter": 12}, "invalid_payload", "matter"),
        ("queue.join", {"matter": TEACHER, "extra": 1}, "invalid_payload", "extra"),
        ("queue.join", ["not", "an", "object"], "invalid_payload", "(payload)"),
        ("queue.join", {"matter": "NO-SUCH"}, "matter_unknown", None),
        ("webrtc.offer", {"session_id": "s_1", "type": "pranswer", "sdp": "x"},
         "invalid_payload", "type"),
    ]
    for event, payload, code, field in cases:
        result = await kiosk.call(event, payload)
        assert result["error"]["code"] == code, (event, payload, result)
        if field is not None:
            assert result["error"]["detail"]["field"] == field
    assert (await kiosk.ok("queue.join", {"matter": TEACHER}))["ticket"]["position"] == 1


async def test_citizen_reconnecting_within_grace_gets_missed_events_in_order(
    server: TestServer,
) -> None:
    clerk = await parties.clerk(server, "wangli")
    mobile = await parties.citizen(server, "wx-resume")
    await mobile.ok("queue.join", {"matter": TEACHER})
    _, session = await _accept(clerk)
    sid = session["session_id"]
    await mobile.next("session.started")
    seen = mobile.last_seq
    await mobile.disconnect()

    await clerk.ok("webrtc.offer", {"session_id": sid, "type": "offer", "sdp": "v=0 one"})
    await clerk.ok("webrtc.candidate", {"session_id": sid, "candidate": "candidate:two"})
    back = await parties.citizen(server, "wx-resume")
    resumed = await back.ok("session.resume", {"last_seq": seen})
    assert resumed["replayed"] == 2
    first, second = await back.next("webrtc.offer"), await back.next("webrtc.candidate")
    assert (first["sdp"], first["seq"]) == ("v=0 one", seen + 1)
    assert (second["candidate"], second["seq"]) == ("candidate:two", seen + 2)
    await asyncio.sleep(0.8)  # past the grace period: the session must still be there
    await back.ok("session.connected", {"session_id": sid})
    assert (await clerk.next("session.state"))["state"] == "active"


async def test_citizen_gone_past_grace_abandons_the_session(server: TestServer) -> None:
    clerk = await parties.clerk(server, "wangli")
    mobile = await parties.citizen(server, "wx-gone")
    await mobile.ok("queue.join", {"matter": TEACHER})
    await _accept(clerk)
    await mobile.disconnect()
    ended = await clerk.next("session.ended", wait_s=3)
    assert (ended["outcome"], ended["reason"]) == ("abandoned", "citizen_lost")
    assert ended["presence"] == "wrap_up"


async def test_clerk_lost_puts_the_ticket_back_at_the_head(server: TestServer) -> None:
    lost = await parties.clerk(server, "lost")
    early = await parties.kiosk(server)
    await early.ok("queue.join", {"matter": TEACHER})
    await _accept(lost)
    late = await parties.kiosk(server)
    await late.ok("queue.join", {"matter": TEACHER})
    await lost.disconnect()

    ended = await early.next("session.ended", wait_s=3)
    assert (ended["outcome"], ended["reason"], ended["requeued"]) == ("failed", "clerk_lost",
                                                                      True)
    rescuer = await parties.clerk(server, "rescuer")
    offer = await rescuer.next("offer")
    assert offer["requeued"] is True
    first_ticket = (await early.call("session.resume", {"last_seq": 0}))["ticket"]
    assert offer["ticket_id"] == first_ticket["ticket_id"]


async def test_leaving_the_queue_moves_the_others_up(server: TestServer) -> None:
    kiosks = [await parties.kiosk(server) for _ in range(3)]
    tickets = [(await k.ok("queue.join", {"matter": TEACHER}))["ticket"] for k in kiosks]
    assert [t["position"] for t in tickets] == [1, 2, 3]
    assert (await kiosks[0].ok("queue.leave"))["left"] is True
    update = await kiosks[2].until("queue.update", lambda d: d["position"] == 2)
    assert update["ticket_id"] == tickets[2]["ticket_id"]
    assert (await kiosks[1].until("queue.update", lambda d: d["position"] == 1))


async def test_a_second_console_tab_takes_over_and_the_first_is_told(
    server: TestServer,
) -> None:
    first = await parties.clerk(server, "wangli")
    second = await parties.console(server, "wangli")
    assert (await first.next("tab.inactive"))["reason"] == "opened_elsewhere"
    refused = await first.call("presence.set", {"state": "break"})
    assert refused["error"]["code"] == "inactive_tab"
    assert (await second.ok("presence.set", {"state": "break"}))["state"] == "break"


async def test_supervisor_pauses_assigns_and_moves(server: TestServer) -> None:
    boss = await parties.clerk(server, "boss", role="supervisor", namespace="/supervisor")
    await boss.ok("queue.pause", {"matter": TEACHER})
    kiosk = await parties.kiosk(server)
    ticket = (await kiosk.ok("queue.join", {"matter": TEACHER}))["ticket"]
    assert ticket["state"] == "paused"
    worker = await parties.clerk(server, "worker")
    chosen = await parties.clerk(server, "chosen", available=False)
    await asyncio.sleep(0.2)
    assert worker.drain("offer") == []
    await boss.ok("ticket.assign", {"ticket_id": ticket["ticket_id"], "clerk": "chosen"})
    await boss.ok("queue.resume", {"matter": TEACHER})
    await chosen.ok("presence.set", {"state": "available"})
    offer = await chosen.next("offer")
    assert offer["ticket_id"] == ticket["ticket_id"]
    assert worker.drain("offer") == []
    dashboard = await boss.ok("dashboard")
    assert {c["id"] for c in dashboard["clerks"]} >= {"worker", "chosen"}
    unknown = await boss.call("ticket.move", {"ticket_id": "t_nope", "to": "head"})
    assert unknown["error"]["code"] == "ticket_unknown"

    await server.app[app_keys.JOURNAL].flush()
    async with server.app[app_keys.DB].connect() as conn:
        actions = [r.action for r in await conn.execute(
            sa.select(tables.audit_log.c.action).where(tables.audit_log.c.actor == "clerk:boss"))]
    assert actions[-3:] == ["queue.pause", "ticket.assign", "queue.resume"]


async def test_a_flooding_client_is_throttled_then_disconnected(server: TestServer) -> None:
    kiosk = await parties.kiosk(server)
    calm = await parties.kiosk(server)
    codes = []
    for _ in range(120):
        if not kiosk.client.connected:
            break
        try:
            result = await kiosk.client.call("queue.overview", {}, namespace="/kiosk",
                                             timeout=2)
        except Exception:
            break
        codes.append(result["error"]["code"])
    assert "rate_limited" in codes
    await asyncio.sleep(0.3)
    assert not kiosk.client.connected
    assert (await calm.ok("queue.join", {"matter": TEACHER}))["ticket"]["position"] == 1


async def test_a_ticket_widens_to_the_county_after_its_escalation_time(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    config = tmp_path / "kiosk_config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    matters = config / "matters.toml"
    text = matters.read_text()
    block = text.index('code = "SAMR-IND-BIZ-REG"')
    end = text.index("escalation_seconds", block)
    line_end = text.index("\n", end)
    matters.write_text(text[:end] + "escalation_seconds = 1" + text[line_end:])
    settings = make_settings(tmp_path, config_dir=config, offer_timeout_s=5, media_mode="p2p")
    server: TestServer = await aiohttp_server(create_app(settings))
    try:
        county = await parties.clerk(server, "hekou", jurisdictions=("370503",))
        kiosk = await parties.kiosk(server, "hk-gudao-01")
        ticket = (await kiosk.ok("queue.join", {"matter": "SAMR-IND-BIZ-REG"}))["ticket"]
        assert ticket["level"] == "township"
        await asyncio.sleep(0.5)
        assert county.drain("offer") == []  # only township clerks may take it yet
        offer = await county.next("offer", wait_s=3)
        assert offer["ticket_id"] == ticket["ticket_id"]
        assert offer["waited_s"] >= 1.0
    finally:
        await parties.close_all()


async def test_an_oversized_message_is_refused_without_harming_others(
    server: TestServer,
) -> None:
    big = await parties.kiosk(server)
    other = await parties.kiosk(server)
    with contextlib.suppress(Exception):  # the server closes the connection: no ack
        await big.client.call("queue.join", {"matter": "x" * 70_000}, namespace="/kiosk",
                              timeout=2)
    await asyncio.sleep(0.3)
    assert not big.client.connected
    assert (await other.ok("queue.join", {"matter": TEACHER}))["ticket"]["position"] == 1


async def test_zero_wrap_up_frees_the_clerk_with_the_end_of_the_call(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    """Wrap-up configured as zero: ``session.ended`` tells the clerk "available" and the
    next waiting citizen's offer follows it, with no wrap-up in between to end."""
    settings = make_settings(tmp_path, offer_timeout_s=5, wrap_up_s=0, grace_s=0.6,
                             media_mode="p2p")
    server: TestServer = await aiohttp_server(create_app(settings))
    try:
        clerk = await parties.clerk(server, "wangli")
        first, second = await parties.kiosk(server), await parties.kiosk(server)
        joined = await first.ok("queue.join", {"matter": TEACHER})
        # Offered while the join was answered: the ack says so, no queue.update beside it.
        assert joined["ticket"]["state"] == "offered"
        assert not [u for u in first.drain("queue.update") if u["state"] == "offered"]
        _, session = await _accept(clerk)
        await second.ok("queue.join", {"matter": TEACHER})
        await clerk.ok("session.end", {"session_id": session["session_id"],
                                       "outcome": "failed", "reason": "no_video"})
        ended = await clerk.next("session.ended")
        assert (ended["presence"], ended["wrap_up_s"]) == ("available", 0)
        offer = await clerk.next("offer")
        assert offer["presence"] == "offered"
        assert await second.until("queue.update", lambda u: u["state"] == "offered")
        with pytest.raises(AssertionError, match="not_in_wrap_up"):
            await clerk.ok("wrapup.done", {})
    finally:
        await parties.close_all()


async def test_three_kiosks_two_clerks_through_declines_timeouts_drops_and_leaving(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    """The acceptance scenario in one piece: every rule interacting with the others."""
    settings = make_settings(tmp_path, offer_timeout_s=3.0, wrap_up_s=0.3, grace_s=0.6,
                             media_mode="p2p")
    server: TestServer = await aiohttp_server(create_app(settings))
    try:
        await _three_kiosks_two_clerks(server)
    finally:
        await parties.close_all()


async def _three_kiosks_two_clerks(server: TestServer) -> None:
    k1, k2, k3 = [await parties.kiosk(server) for _ in range(3)]
    t1 = (await k1.ok("queue.join", {"matter": TEACHER}))["ticket"]["ticket_id"]
    t2 = (await k2.ok("queue.join", {"matter": TEACHER}))["ticket"]["ticket_id"]
    assert (await k3.ok("queue.join", {"matter": TEACHER}))["ticket"]["position"] == 3

    # a declines t1 but is the only clerk at work, so t1 comes straight back to a
    a = await parties.clerk(server, "clerk-a")
    first = await a.next("offer")
    assert first["ticket_id"] == t1
    await a.ok("offer.decline", {"offer_id": first["offer_id"]})
    assert (await a.next("offer.withdrawn"))["reason"] == "declined"
    assert (await a.next("offer"))["ticket_id"] == t1
    # b's offer must outlive a's by a margin that a loaded machine does not eat up:
    # b accepts it just after a's has timed out
    await asyncio.sleep(1.0)
    b = await parties.clerk(server, "clerk-b")
    to_b = await b.next("offer")
    assert to_b["ticket_id"] == t2
    assert await k3.until("queue.update", lambda d: d.get("position") == 1)

    # k3 leaves; a lets t1 time out: the second miss in a row sends a away
    await k3.ok("queue.leave")
    assert (await a.next("offer.withdrawn", wait_s=6))["reason"] == "timeout"
    assert (await a.until("presence", lambda d: d["state"] == "away"))
    await b.ok("offer.accept", {"offer_id": to_b["offer_id"]})
    s2 = to_b["offer_id"]
    await a.ok("presence.set", {"state": "available"})
    await asyncio.sleep(0.3)
    assert a.drain("offer") == []  # b, who never refused t1, will be free soon

    await k2.ok("session.connected", {"session_id": s2})
    await b.ok("session.end", {"session_id": s2, "outcome": "completed"})
    again = await b.next("offer", wait_s=3)  # after wrap-up
    assert again["ticket_id"] == t1
    s1 = (await b.ok("offer.accept", {"offer_id": again["offer_id"]}))["session"]["session_id"]
    await k1.next("session.started")

    # k1 drops and resumes within grace, getting what it missed
    seen = k1.last_seq
    await k1.disconnect()
    await b.ok("webrtc.offer", {"session_id": s1, "type": "offer", "sdp": "v=0 missed"})
    k1_again = parties.Party(server, "/kiosk")
    await k1_again.connect(auth={"token": k1.token})  # type: ignore[attr-defined]
    assert (await k1_again.ok("session.resume", {"last_seq": seen}))["replayed"] == 1
    assert (await k1_again.next("webrtc.offer"))["sdp"] == "v=0 missed"

    # b vanishes past grace: t1 goes back to the head and a (now the only one) gets it
    await b.disconnect()
    ended = await k1_again.next("session.ended", wait_s=3)
    assert (ended["reason"], ended["requeued"]) == ("clerk_lost", True)
    rescue = await a.next("offer", wait_s=3)
    assert (rescue["ticket_id"], rescue["requeued"]) == (t1, True)


async def test_presence_cannot_skip_an_open_offer_and_a_lost_offer_goes_on(
    server: TestServer,
) -> None:
    first = await parties.clerk(server, "first")
    kiosk = await parties.kiosk(server)
    ticket = (await kiosk.ok("queue.join", {"matter": TEACHER}))["ticket"]
    await first.next("offer")
    for state in ("available", "break"):
        refused = await first.call("presence.set", {"state": state})
        assert refused["error"]["code"] == "invalid_transition", state
    second = await parties.clerk(server, "second")
    await first.disconnect()  # the unanswered offer is withdrawn, not lost
    offer = await second.next("offer", wait_s=3)
    assert offer["ticket_id"] == ticket["ticket_id"]
