"""The citizens of one worker process: one socket.io client each, all on one loop.

A citizen without a ticket is *idle*. The join pacer takes the next idle citizen at
each tick of a fixed schedule and sends ``queue.join``; when ``session.ended`` arrives
the citizen is idle again and can be picked for another join. Every join is recorded
with the times it was sent and acknowledged; the clerks' process records when each
ticket's offer arrived, and the parent joins the two on ``ticket_id`` afterwards (one
machine, one monotonic clock).

The same role connects to the bare echo server for the baseline: no auth, namespace
``/``, and :meth:`Citizens.echo` paces ``echo`` calls from one client.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import socketio

CONNECT_CONCURRENCY = 25
CONNECT_TIMEOUT = 20.0
ACK_TIMEOUT = 60.0


@dataclass(slots=True)
class Join:
    citizen: str
    phase: str
    sent: float
    acked: float | None = None
    ticket_id: str | None = None
    state: str | None = None
    position: int | None = None
    error: str | None = None
    ended: float | None = None


class Citizens:
    def __init__(self, subs: list[str], secret: str, matter: str) -> None:
        self.subs = subs
        self.secret = secret
        self.matter = matter
        self.namespace = "/"
        self.http: aiohttp.ClientSession | None = None
        self.clients: list[socketio.AsyncClient | None] = []
        self.idle: deque[int] = deque()
        self.current: dict[int, Join] = {}
        self.joins: list[Join] = []
        self.events: Counter[str] = Counter()
        self._settled = asyncio.Event()
        self._closing = False

    # ---- connections -------------------------------------------------------------

    async def connect(self, url: str, namespace: str) -> dict[str, Any]:
        """Connect every citizen; with ``/citizen`` each presents a minted entry token."""
        from server.citizen_tokens import TokenPolicy, mint

        self.namespace = namespace
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        policy = TokenPolicy(self.secret, "xiaowu-citizen", 86400)
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        errors: Counter[str] = Counter()
        started = time.monotonic()

        async def one(index: int, sub: str) -> None:
            client = socketio.AsyncClient(reconnection=False, http_session=self.http,
                                          handle_sigint=False)
            client.on("session.ended", lambda data: self._ended(index), namespace=namespace)
            client.on("disconnect", lambda *_: self._count("disconnect"), namespace=namespace)
            auth = {"token": mint(policy, sub, ttl_s=86400)} if namespace == "/citizen" else None
            async with gate:
                try:
                    await client.connect(url, namespaces=[namespace], auth=auth,
                                         transports=["websocket"],
                                         wait_timeout=CONNECT_TIMEOUT)
                except Exception as exc:
                    errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
                    return
            self.clients[index] = client
            self.idle.append(index)

        self.clients = [None] * len(self.subs)
        self.idle.clear()
        await asyncio.gather(*(one(i, sub) for i, sub in enumerate(self.subs)))
        return {"connected": len(self.idle), "errors": dict(errors),
                "seconds": time.monotonic() - started}

    async def disconnect(self) -> None:
        self._closing = True
        gate = asyncio.Semaphore(100)

        async def one(client: socketio.AsyncClient | None) -> None:
            async with gate:
                if client is not None and client.connected:
                    await client.disconnect()

        await asyncio.gather(*(one(c) for c in self.clients), return_exceptions=True)
        self.clients = []
        self.idle.clear()
        self.current.clear()
        if self.http is not None:
            await self.http.close()
            self.http = None
        self._closing = False

    async def close(self) -> None:
        await self.disconnect()

    def _count(self, what: str) -> None:
        if not self._closing:
            self.events[what] += 1

    # ---- the queue -----------------------------------------------------------------

    def _ended(self, index: int) -> None:
        join = self.current.pop(index, None)
        if join is not None:
            join.ended = time.monotonic()
            self.idle.append(index)
        self._check_settled()

    def _acked(self, index: int, join: Join, result: Any) -> None:
        join.acked = time.monotonic()
        if isinstance(result, dict) and isinstance(result.get("ticket"), dict):
            ticket = result["ticket"]
            join.ticket_id = ticket.get("ticket_id")
            join.state = ticket.get("state")
            join.position = ticket.get("position")
            return
        error = result.get("error") if isinstance(result, dict) else None
        join.error = str(error.get("code")) if isinstance(error, dict) else repr(result)[:80]
        if self.current.get(index) is join:
            del self.current[index]
            self.idle.append(index)
        self._check_settled()

    def _check_settled(self) -> None:
        if not self.current:
            self._settled.set()

    async def _join(self, index: int, phase: str) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        join = Join(self.subs[index], phase, time.monotonic())
        self.current[index] = join
        self.joins.append(join)
        self._settled.clear()

        def ack(result: Any = None) -> None:
            self._acked(index, join, result)
            if not done.done():
                done.set_result(None)

        client = self.clients[index]
        try:
            assert client is not None
            await client.emit("queue.join", {"matter": self.matter},
                              namespace=self.namespace, callback=ack)
        except Exception as exc:  # a dropped client is counted, not re-used
            join.error = f"emit_failed: {type(exc).__name__}"
            self.current.pop(index, None)
            self._check_settled()
            done.set_result(None)
        return done

    async def steady(self, start_at: float, duration: float, rate: float,
                     settle_s: float) -> dict[str, Any]:
        """Join at ``rate`` per second from ``start_at`` for ``duration`` seconds (idle
        citizens re-join), then wait up to ``settle_s`` for every session to end."""
        interval = 1.0 / rate
        sent = starved = 0
        worst_late = 0.0
        k = 0
        while (due := start_at + k * interval) < start_at + duration:
            k += 1
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                worst_late = max(worst_late, -delay)
            if not self.idle:
                starved += 1
                continue
            await self._join(self.idle.popleft(), "steady")
            sent += 1
        settled = await self.wait_done(settle_s)
        return {"sent": sent, "starved": starved, "worst_late_s": worst_late,
                "settled": settled, "open": len(self.current)}

    async def backlog(self, count: int) -> dict[str, Any]:
        """Join ``count`` idle citizens one after the other, each after the previous ack,
        so each ack time is the server's cost of one join at that queue length."""
        for _ in range(min(count, len(self.idle))):
            done = await self._join(self.idle.popleft(), "backlog")
            await asyncio.wait_for(done, ACK_TIMEOUT)
        return {"sent": count}

    async def wait_done(self, timeout_s: float) -> bool:
        """Whether every open join ended (session over, or refused) within ``timeout_s``."""
        if not self.current:
            return True
        try:
            await asyncio.wait_for(self._settled.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    # ---- baseline ------------------------------------------------------------------

    async def echo(self, start_at: float, duration: float, rate: float) -> dict[str, Any]:
        """``echo`` calls from the first client at ``rate``; round trips in seconds."""
        client = next(c for c in self.clients if c is not None and c.connected)
        rtts: list[float] = []
        interval = 1.0 / rate
        k = 0
        while (due := start_at + k * interval) < start_at + duration:
            k += 1
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent = time.monotonic()

            def ack(*_: Any, sent: float = sent) -> None:
                rtts.append(time.monotonic() - sent)

            await client.emit("echo", {"matter": self.matter, "n": k}, callback=ack)
        await asyncio.sleep(1.0)
        return {"sent": k, "rtts": rtts}

    async def collect(self) -> dict[str, Any]:
        return {"joins": [asdict(j) for j in self.joins], "events": dict(self.events)}
