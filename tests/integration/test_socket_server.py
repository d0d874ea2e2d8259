"""What an idle socket.io connection keeps alive on the server: engine.io's send queue is
a SendQueue, and no frame of our HTTP middlewares waits for the websocket's lifetime.
An emit is one synchronous step. Real python-socketio clients on a real port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from server import app_keys
from server.citizen_tokens import mint
from server.http_support import token_policy
from server.socket_packets import JsonPacket
from server.socket_server import DirectEmitManager, SendQueue

ServerFactory = Any


@pytest.fixture
async def server(app: web.Application, aiohttp_server: ServerFactory) -> TestServer:
    srv: TestServer = await aiohttp_server(app)
    return srv


async def _citizen(server: TestServer) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    token = mint(token_policy(server.app), "c-footprint", ttl_s=600)
    await client.connect(str(server.make_url("/")), namespaces=["/citizen"],
                         auth={"token": token}, transports=["websocket"], wait_timeout=5)
    return client


@pytest.fixture
async def citizen(server: TestServer) -> AsyncIterator[socketio.AsyncClient]:
    client = await _citizen(server)
    yield client
    if client.connected:
        await client.disconnect()


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Names of the coroutines a task is suspended in, outermost first."""
    names: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and hasattr(coro, "cr_frame"):
        names.append(coro.__qualname__)
        coro = coro.cr_await
    return names


async def test_every_connection_sends_through_a_send_queue(
        server: TestServer, citizen: socketio.AsyncClient) -> None:
    sockets = server.app[app_keys.SIO].eio.sockets
    assert sockets
    assert all(type(s.queue) is SendQueue for s in sockets.values())
    ack = await citizen.call("queue.leave", {}, namespace="/citizen", timeout=5)
    assert ack == {"ok": True, "left": False}


async def test_a_server_side_disconnect_drains_the_queue_and_ends(
        server: TestServer, citizen: socketio.AsyncClient) -> None:
    sio = server.app[app_keys.SIO]
    ((sid, _eio_sid),) = list(sio.manager.get_participants("/citizen", None))
    gone = asyncio.Event()
    citizen.on("disconnect", lambda *_: gone.set(), namespace="/citizen")
    await asyncio.wait_for(sio.disconnect(sid, namespace="/citizen"), 5)
    await asyncio.wait_for(gone.wait(), 5)


async def test_no_middleware_frame_waits_on_an_open_websocket(
        server: TestServer, citizen: socketio.AsyncClient) -> None:
    stacks = [_awaiting(t) for t in asyncio.all_tasks()]
    websocket = [s for s in stacks if any("_websocket_handler" in name for name in s)]
    assert websocket, stacks
    for stack in websocket:
        assert not any(name.startswith(("_answer_errors", "origin_middleware",
                                        "errors_middleware")) for name in stack), stack


async def test_an_emit_reaches_every_socket_of_a_room_without_yielding(
        server: TestServer, citizen: socketio.AsyncClient) -> None:
    """The queue emits under its lock: an emit that yielded would let other work run
    while the lock is held."""
    second = await _citizen(server)  # the same citizen in a second tab
    try:
        got: list[asyncio.Queue[Any]] = [asyncio.Queue(), asyncio.Queue()]
        for client, inbox in zip((citizen, second), got, strict=True):
            client.on("probe", inbox.put_nowait, namespace="/citizen")
        sio = server.app[app_keys.SIO]
        assert type(sio.manager) is DirectEmitManager
        others_ran: list[bool] = []
        asyncio.get_running_loop().call_soon(others_ran.append, True)
        await sio.emit("probe", {"n": 1}, room="citizen:c-footprint", namespace="/citizen")
        assert others_ran == []
        for inbox in got:
            assert await asyncio.wait_for(inbox.get(), 5) == {"n": 1}
    finally:
        await second.disconnect()


async def test_an_emit_with_an_ack_still_gets_the_answer(
        server: TestServer, citizen: socketio.AsyncClient) -> None:
    citizen.on("ping", lambda data: {"pong": data["n"]}, namespace="/citizen")
    sio = server.app[app_keys.SIO]
    ((sid, _eio_sid),) = list(sio.manager.get_participants("/citizen", None))
    answer = await sio.call("ping", {"n": 7}, to=sid, namespace="/citizen", timeout=5)
    assert answer == {"pong": 7}


async def test_the_long_polling_fallback_sends_and_receives_through_the_send_queue(
        server: TestServer) -> None:
    """Pages fall back to long-polling behind proxies that refuse the upgrade: engine.io
    then reads the send queue from each GET instead of a writer task."""
    client = socketio.AsyncClient(reconnection=False)
    token = mint(token_policy(server.app), "c-polling", ttl_s=600)
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    client.on("probe", inbox.put_nowait, namespace="/citizen")
    await client.connect(str(server.make_url("/")), namespaces=["/citizen"],
                         auth={"token": token}, transports=["polling"], wait_timeout=5)
    try:
        assert client.transport() == "polling"
        ack = await client.call("queue.leave", {}, namespace="/citizen", timeout=5)
        assert ack == {"ok": True, "left": False}
        sio = server.app[app_keys.SIO]
        await sio.emit("probe", {"n": 2}, room="citizen:c-polling", namespace="/citizen")
        assert await asyncio.wait_for(inbox.get(), 5) == {"n": 2}
        # Closed from the server: the CLOSE goes through the queue to the pending GET (a
        # client-side close over polling waits for that GET's timeout, ~30 s).
        gone = asyncio.Event()
        client.on("disconnect", lambda *_: gone.set(), namespace="/citizen")
        for eio_sid in list(sio.eio.sockets):
            await asyncio.wait_for(sio.eio.disconnect(eio_sid), 5)
        await asyncio.wait_for(gone.wait(), 5)
    finally:
        if client.connected:
            await client.disconnect()


async def test_packets_are_json_only_and_carry_chinese_as_utf8(
        server: TestServer, citizen: socketio.AsyncClient) -> None:
    """The server's packets skip python-socketio's binary scan and are encoded by orjson:
    the text on the wire holds the characters themselves, not ``\\u`` escapes."""
    sio = server.app[app_keys.SIO]
    assert sio.packet_class is JsonPacket
    sent: list[str] = []
    eio = sio.eio
    original = eio.send_packet

    async def spy(eio_sid: str, pkt: Any) -> None:
        sent.append(pkt.data)
        await original(eio_sid, pkt)

    eio.send_packet = spy
    try:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        citizen.on("probe", inbox.put_nowait, namespace="/citizen")
        await sio.emit("probe", {"prompt": "请出示身份证"}, room="citizen:c-footprint",
                       namespace="/citizen")
        assert await asyncio.wait_for(inbox.get(), 5) == {"prompt": "请出示身份证"}
    finally:
        eio.send_packet = original
    assert sent == ['2/citizen,["probe",{"prompt":"请出示身份证"}]']
    with pytest.raises(TypeError):
        await sio.emit("probe", {"raw": b"\x00"}, room="citizen:c-footprint",
                       namespace="/citizen")
