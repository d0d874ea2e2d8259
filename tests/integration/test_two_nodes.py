"""Two server processes on loopback, one Redis, one PostgreSQL schema: a clerk connected
to node 1 is paired with a citizen waiting on node 2, and every event of the call's
set-up and end crosses between the nodes through python-socketio's Redis manager. The
citizen drops mid-call and resumes on the other node, replaying what it missed.

Media and the case's documents across nodes come with the media-pinning work; the
servers run in ``p2p`` media mode here, so the WebRTC signaling relays between the
participants themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from server import app_keys
from server.settings import REPO_ROOT
from server.storage.database import Database
from tests.conftest import (
    POSTGRES_URL,
    TEST_TOKEN_SECRET,
    _drop_schema,
    _postgres_schema,
    make_settings,
)
from tests.integration import parties

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
TEACHER = "EDU-TQ-CONFIRM"
START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Node:
    """One ``python -m server serve`` process; ``app`` is a local, unstarted app holding
    the shared database and settings, for the test's own set-up (accounts, booths)."""

    def __init__(self, name: str, app: web.Application, env: dict[str, str],
                 data_dir: Path, log_path: Path) -> None:
        self.name = name
        self.app = app
        self.port = _free_port()
        self.log_path = log_path
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        node_env = {**env, "XIAOWU_NODE_ID": name,
                    "XIAOWU_PUBLIC_URL": f"http://127.0.0.1:{self.port}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--data-dir", str(data_dir)],
            cwd=REPO_ROOT, env=node_env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_url(self, path: str) -> URL:
        return URL(f"http://127.0.0.1:{self.port}").join(URL(path))

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    async def wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited:\n{self.log_tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.make_url("/readyz")) as response:
                        if response.status == 200:
                            return
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{self.name} not ready:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye to Redis; the others find out by the TTL."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    async def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, redis_url: str, redis_prefix: str, *, media_mode: str,
                    shared_data: bool = False,
                    extra_env: dict[str, str] | None = None) -> AsyncIterator[tuple[Node, Node]]:
    """Two server processes on one Redis and one fresh PostgreSQL schema; with
    ``shared_data`` both use one data directory (the blobs every node must see)."""
    admin, schema = await _postgres_schema()
    db = Database(POSTGRES_URL, schema=schema)
    await db.upgrade()
    app = web.Application()
    app[app_keys.SETTINGS] = make_settings(tmp_path / "test", database_url=POSTGRES_URL,
                                           database_schema=schema)
    app[app_keys.DB] = db
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("XIAOWU_") and key not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "XIAOWU_DATABASE_URL": POSTGRES_URL, "XIAOWU_DATABASE_SCHEMA": schema,
        "XIAOWU_REDIS_URL": redis_url, "XIAOWU_REDIS_PREFIX": redis_prefix,
        "XIAOWU_CITIZEN_TOKEN_SECRET": TEST_TOKEN_SECRET, "XIAOWU_MEDIA_MODE": media_mode,
        "XIAOWU_AUTO_MIGRATE": "false", "XIAOWU_CAPTURE_WARM_START": "false",
        "XIAOWU_WRAP_UP_S": "0.5", "XIAOWU_DOCUMENT_WORKERS": "1",
        "XIAOWU_NODE_HEARTBEAT_S": "0.3", "XIAOWU_NODE_TTL_S": "1.5",
        **(extra_env or {}),
    })
    started = [Node(f"node{i}", app, env,
                    tmp_path / ("shared" if shared_data else f"node{i}"),
                    tmp_path / f"node{i}.log") for i in (1, 2)]
    try:
        await asyncio.gather(*(node.wait_ready() for node in started))
        yield started[0], started[1]
    finally:
        await parties.close_all()
        await asyncio.gather(*(node.stop() for node in started))
        await db.close()
        await _drop_schema(admin, schema)


@pytest.fixture
async def nodes(tmp_path: Path, redis_url: str,
                redis_prefix: str) -> AsyncIterator[tuple[Node, Node]]:
    async with two_nodes(tmp_path, redis_url, redis_prefix, media_mode="p2p") as started:
        yield started


async def test_a_clerk_on_node_1_serves_a_citizen_waiting_on_node_2(
        nodes: tuple[Node, Node]) -> None:
    node1, node2 = nodes
    citizen = await parties.citizen(node2, "wx-two-nodes")
    ticket = (await citizen.ok("queue.join", {"matter": TEACHER}))["ticket"]
    assert ticket["position"] == 1

    clerk = await parties.clerk(node1, "wangli")  # goes available on node 1
    offer = await clerk.next("offer")
    assert offer["ticket_id"] == ticket["ticket_id"]
    assert await citizen.until("queue.update", lambda d: d.get("state") == "offered")

    accepted = await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]})
    session_id = accepted["session"]["session_id"]
    started = await citizen.next("session.started")
    assert (started["session_id"], started["role"]) == (session_id, "citizen")

    await clerk.ok("webrtc.offer", {"session_id": session_id, "type": "offer", "sdp": "v=0 a"})
    relayed = await citizen.next("webrtc.offer")
    assert (relayed["sdp"], relayed["from"]) == ("v=0 a", "clerk")
    await citizen.ok("webrtc.answer", {"session_id": session_id, "type": "answer",
                                       "sdp": "v=0 b"})
    answer = await clerk.next("webrtc.answer")  # numbered on node 2, after node 1's
    assert (answer["sdp"], answer["seq"]) == ("v=0 b", 2)

    # The citizen drops off node 2, misses an event, and resumes on node 1.
    last_seq = citizen.last_seq
    await citizen.disconnect()
    await clerk.ok("webrtc.offer", {"session_id": session_id, "type": "offer",
                                    "sdp": "v=0 again"})
    back = await parties.citizen(node1, "wx-two-nodes")
    resumed = await back.ok("session.resume", {"last_seq": last_seq})
    assert resumed["replayed"] == 1
    replayed = await back.next("webrtc.offer")
    assert (replayed["sdp"], replayed["seq"]) == ("v=0 again", last_seq + 1)

    await back.ok("session.connected", {"session_id": session_id})
    assert (await clerk.until("session.state", lambda d: d["state"] == "active"))
    await clerk.ok("session.end", {"session_id": session_id, "outcome": "completed"})
    ended = await back.next("session.ended")
    assert (ended["session_id"], ended["outcome"]) == (session_id, "completed")
    assert (await clerk.until("session.ended", lambda d: d["session_id"] == session_id)
            )["presence"] in ("wrap_up", "available")


async def test_a_citizen_back_on_the_other_node_inside_grace_keeps_the_ticket(
        tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    """Node 2's grace timer cannot be cancelled from node 1; when it runs out it finds
    the citizen's socket on node 1 (shared in Redis) and leaves the ticket alone."""
    async with two_nodes(tmp_path, redis_url, redis_prefix, media_mode="p2p",
                         extra_env={"XIAOWU_GRACE_S": "1"}) as (node1, node2):
        citizen = await parties.citizen(node2, "wx-grace")
        ticket = (await citizen.ok("queue.join", {"matter": TEACHER}))["ticket"]
        await citizen.disconnect()
        back = await parties.citizen(node1, "wx-grace")
        await asyncio.sleep(3)  # node 2's grace period has run out meanwhile
        again = (await back.ok("queue.join", {"matter": TEACHER}))["ticket"]
        assert again["ticket_id"] == ticket["ticket_id"]
        assert "grace.back_on_another_node" in node2.log_path.read_text(errors="replace")


async def test_each_citizen_gets_each_position_once_from_its_own_node(
        nodes: tuple[Node, Node]) -> None:
    """Both nodes change the queue at once; each pushes positions only to its own
    sockets, so the citizen behind does not hear its new place twice (once per node)."""
    node1, node2 = nodes
    first = await parties.citizen(node1, "wx-first")
    second = await parties.citizen(node2, "wx-second")
    waiting = await parties.citizen(node2, "wx-waiting")
    behind = await parties.citizen(node1, "wx-behind")
    for party in (first, second, waiting, behind):
        await party.ok("queue.join", {"matter": TEACHER})
    await asyncio.sleep(1.0)  # the joins' own pushes are out
    waiting.drain("queue.update")
    behind.drain("queue.update")

    await asyncio.gather(first.ok("queue.leave"), second.ok("queue.leave"))
    assert (await waiting.until("queue.update", lambda d: d["position"] == 1))
    assert (await behind.until("queue.update", lambda d: d["position"] == 2))
    await asyncio.sleep(1.5)  # every node's debounced push has run
    assert [d for d in waiting.drain("queue.update") if d["position"] == 1] == []
    assert [d for d in behind.drain("queue.update") if d["position"] == 2] == []


async def test_a_withdrawn_offer_puts_the_citizen_on_the_other_node_back_to_waiting(
        nodes: tuple[Node, Node]) -> None:
    """Node 1 tells the citizen of the offer; the node holding the citizen's socket must
    then send their place again, although it is the one it had sent before the offer."""
    node1, node2 = nodes
    citizen = await parties.citizen(node2, "wx-withdrawn")
    await citizen.ok("queue.join", {"matter": TEACHER})
    await citizen.until("queue.update", lambda d: d.get("state") == "waiting")
    clerk = await parties.clerk(node1, "wangli")
    await clerk.next("offer")
    assert await citizen.until("queue.update", lambda d: d.get("state") == "offered")
    await clerk.disconnect()  # the offer is withdrawn; nobody else can take the ticket
    back = await citizen.until("queue.update", lambda d: d.get("state") != "offered")
    assert (back["state"], back["position"]) == ("waiting", 1)


async def test_a_console_tab_on_the_other_node_takes_over_and_gives_back(
        nodes: tuple[Node, Node]) -> None:
    """The newest console tab is the active one whichever node it is on: the older tab
    on node 1 is told and refused, and is active again once the newer one closes."""
    node1, node2 = nodes
    first = await parties.clerk(node1, "wangli")
    second = await parties.console(node2, "wangli")
    assert (await first.next("tab.inactive"))["reason"] == "opened_elsewhere"
    refused = await first.call("presence.set", {"state": "break"})
    assert refused["error"]["code"] == "inactive_tab"
    assert (await second.ok("presence.set", {"state": "break"}))["state"] == "break"

    citizen = await parties.citizen(node2, "wx-tabs")
    await citizen.ok("queue.join", {"matter": TEACHER})
    await second.ok("presence.set", {"state": "available"})
    offer = await second.next("offer")
    await asyncio.sleep(0.3)
    assert first.drain("offer") == []  # the inactive tab hears nothing of the queue

    await citizen.ok("queue.leave", {})  # withdraws the offer
    assert (await second.next("offer.withdrawn"))["offer_id"] == offer["offer_id"]
    await second.disconnect()
    assert (await first.next("tab.active"))["reason"] == "other_tab_closed"
    assert (await first.ok("presence.set", {"state": "break"}))["state"] == "break"
