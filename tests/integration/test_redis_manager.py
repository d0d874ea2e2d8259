"""The socket.io Redis manager that publishes in the background: two real socket.io
servers on one Redis channel, a real client on the second, emits made on the first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from server.redis_manager import BackgroundPublishingRedisManager

pytestmark = pytest.mark.redis


@pytest.fixture
async def two_servers(aiohttp_server: Any, redis_url: str, redis_prefix: str
                      ) -> AsyncIterator[tuple[socketio.AsyncServer, socketio.AsyncServer,
                                               TestServer]]:
    servers, served = [], []
    for _ in range(2):
        manager = BackgroundPublishingRedisManager(redis_url, channel=f"{redis_prefix}sio")
        sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
        app = web.Application()
        sio.attach(app)

        sio.on("connect", _into_people(sio))
        servers.append(sio)
        served.append(await aiohttp_server(app))
    yield servers[0], servers[1], served[1]
    for sio in servers:
        if (listener := getattr(sio.manager, "thread", None)) is not None:
            listener.cancel()
        if sio.manager.redis is not None:
            await sio.manager.redis.aclose()


def _into_people(sio: socketio.AsyncServer) -> Any:
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.enter_room(sid, "people")
    return connect


async def _subscribed(redis_url: str, channel: str) -> None:
    """The second server's listener subscribes in the background after its first
    connection: wait until it is on the channel."""
    probe = Redis.from_url(redis_url)
    try:
        for _ in range(250):
            numsub = await probe.pubsub_numsub(channel)
            if numsub and numsub[0][1] >= 1:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the second server never subscribed")
    finally:
        await probe.aclose()


async def test_emits_return_before_redis_and_arrive_on_the_other_node_in_order(
        two_servers: tuple[socketio.AsyncServer, socketio.AsyncServer, TestServer],
        redis_url: str, redis_prefix: str) -> None:
    first, _, second_served = two_servers
    client = socketio.AsyncClient(reconnection=False)
    got: list[int] = []
    all_in = asyncio.Event()

    @client.on("n")  # type: ignore[untyped-decorator]
    async def on_n(data: dict[str, int]) -> None:
        got.append(data["i"])
        if len(got) == 200:
            all_in.set()

    await client.connect(str(second_served.make_url("/")), transports=["websocket"])
    try:
        await _subscribed(redis_url, f"{redis_prefix}sio")
        manager = first.manager
        assert isinstance(manager, BackgroundPublishingRedisManager)
        payload = {"i": 0}
        await first.emit("n", payload, room="people")
        # the emit returned without waiting for Redis: nothing is published yet
        assert manager.published == 0
        for i in range(1, 200):
            payload["i"] = i
            await first.emit("n", payload, room="people")
        payload["i"] = -1  # changing the data after the emit must not change the message
        await manager.drain()
        assert manager.published == 200 and manager.lost == 0
        assert manager.batches < 200  # several emits shared a pipeline
        await asyncio.wait_for(all_in.wait(), 10)
        assert got == list(range(200))
    finally:
        await client.disconnect()
