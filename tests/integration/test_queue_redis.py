"""One node in multi-node mode: the queue on Redis and emits through python-socketio's
Redis manager, over real socket.io clients (the two-node test runs two processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestServer

from server import app_keys
from server.app import create_app
from signaling.memory_store import MemoryStore
from signaling.redis_store import RedisStore
from tests.conftest import make_settings
from tests.integration import parties

pytestmark = pytest.mark.redis
TEACHER = "EDU-TQ-CONFIRM"


@pytest.fixture
async def server(tmp_path: Path, aiohttp_server: Any, redis_url: str,
                 redis_prefix: str) -> AsyncIterator[TestServer]:
    settings = make_settings(tmp_path, redis_url=redis_url, redis_prefix=redis_prefix,
                             media_mode="p2p", offer_timeout_s=5)
    srv: TestServer = await aiohttp_server(create_app(settings))
    yield srv
    await parties.close_all()


async def test_a_redis_url_puts_the_queue_and_the_emits_on_redis(
        server: TestServer, redis_prefix: str) -> None:
    app = server.app
    store = app[app_keys.QUEUE].store
    assert isinstance(store, RedisStore) and store.prefix == redis_prefix
    assert isinstance(app[app_keys.SIO].manager, socketio.AsyncRedisManager)

    kiosk = await parties.kiosk(server)
    ticket = (await kiosk.ok("queue.join", {"matter": TEACHER}))["ticket"]
    clerk = await parties.clerk(server, "wangli")
    offer = await clerk.next("offer")
    assert offer["ticket_id"] == ticket["ticket_id"]
    accepted = await clerk.ok("offer.accept", {"offer_id": offer["offer_id"]})
    started = await kiosk.next("session.started")
    assert started["session_id"] == accepted["session"]["session_id"]
    assert await store.redis.hexists(f"{redis_prefix}sessions", started["session_id"])


async def test_without_a_redis_url_the_queue_stays_in_memory(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, redis_url=""))
    assert isinstance(app[app_keys.QUEUE].store, MemoryStore)
    assert not isinstance(app[app_keys.SIO].manager, socketio.AsyncRedisManager)


async def test_a_node_whose_redis_is_unreachable_does_not_start(
        tmp_path: Path, aiohttp_server: Any) -> None:
    settings = make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match="Redis is not reachable"):
        await aiohttp_server(create_app(settings))
