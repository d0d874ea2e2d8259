"""The clerks of the pairing benchmark, all in one worker process.

Each clerk signs in over HTTP, connects to ``/clerk`` with its session cookie, goes
``available`` and then serves offers one at a time from its own inbox: accept, end the
(still connecting) session as ``failed``/``bench``, and send ``wrapup.done`` if the
console still shows wrap-up. Commands (``pause``: go on break; ``resume``: come back)
go through the same inbox, so a clerk never does two things at once.

Recorded: when each ``offer`` arrived (per ``ticket_id``), and for "available again ->
next offer" the instant the clerk released itself and the arrival of its next offer
(also from the moment the clerk was told "available" — a ``presence`` event, or the
``presence`` of ``session.ended`` — which the server sends just before it runs the
dispatcher, so that gap is the dispatcher's time).
The release instant is the send time of the request that made the clerk available:
``wrapup.done`` when its ack was ok, else ``session.end`` (with a zero wrap-up the
clerk's ``session.ended`` already says "available"), or ``presence.set`` when coming back
from a break. Whether tickets were waiting at that instant is decided by the parent
from the citizens' records.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import aiohttp
import socketio

NAMESPACE = "/clerk"
CALL_TIMEOUT = 30.0
LOGIN_CONCURRENCY = 4


class BenchClerk:
    def __init__(self, name: str, client: socketio.AsyncClient, errors: Counter[str],
                 offers: list[tuple[str, float, str]],
                 releases: list[tuple[str, str, float, float, str]]) -> None:
        self.name = name
        self.client = client
        self.errors = errors
        self.offers = offers
        self.releases = releases
        self.inbox: asyncio.Queue[tuple[str, float, dict[str, Any]]] = asyncio.Queue()
        self.presence = "offline"
        self.release: tuple[str, float] | None = None
        self.available_at: float | None = None
        self.pausing = False
        self.on_break = asyncio.Event()
        self.served = 0
        client.on("offer", self._on_offer, namespace=NAMESPACE)
        client.on("presence", self._on_presence, namespace=NAMESPACE)
        client.on("session.started", self._on_step, namespace=NAMESPACE)
        client.on("session.ended", self._on_step, namespace=NAMESPACE)

    def _on_offer(self, data: dict[str, Any]) -> None:
        received = time.monotonic()
        self.offers.append((data["ticket_id"], received, self.name))
        self._set_presence(data["presence"])
        self.inbox.put_nowait(("offer", received, data))

    def _on_presence(self, data: dict[str, Any]) -> None:
        self._set_presence(data["state"])

    def _on_step(self, data: dict[str, Any]) -> None:
        """A step of the call carries the clerk's new state (docs/protocol.md)."""
        if "presence" in data:
            self._set_presence(data["presence"])

    def _set_presence(self, state: str) -> None:
        self.presence = state
        if state == "available":
            self.available_at = time.monotonic()

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """One acked event; ``rate_limited`` is retried after a pause, other errors are
        counted and returned."""
        for attempt in range(6):
            try:
                result: dict[str, Any] = await self.client.call(
                    event, data, namespace=NAMESPACE, timeout=CALL_TIMEOUT)
            except Exception as exc:
                self.errors[f"{event}: {type(exc).__name__}"] += 1
                return {"error": {"code": type(exc).__name__}}
            code = result.get("error", {}).get("code") if "error" in result else None
            if code is None:
                return result
            self.errors[f"{event}: {code}"] += 1
            if code != "rate_limited":
                return result
            await asyncio.sleep(0.2 * (attempt + 1))
        return {"error": {"code": "rate_limited"}}

    async def run(self) -> None:
        while True:
            kind, received, data = await self.inbox.get()
            if kind == "offer":
                await self._serve(received, data)
            elif kind == "pause":
                self.pausing = True
            elif kind == "resume":
                self.pausing = False
                self.on_break.clear()
                self.release = ("presence.set", time.monotonic())
                await self.call("presence.set", {"state": "available"})
            if self.pausing and not self.on_break.is_set():
                await self._try_break()

    async def _serve(self, received: float, offer: dict[str, Any]) -> None:
        release, self.release = self.release, None
        if release is not None:
            self.releases.append((self.name, release[0], release[1], received,
                                  offer["ticket_id"]))
        if self.available_at is not None and self.available_at <= received:
            self.releases.append((self.name, "presence event", self.available_at, received,
                                  offer["ticket_id"]))
        self.available_at = None
        accepted = await self.call("offer.accept", {"offer_id": offer["offer_id"]})
        if "error" in accepted:
            return
        session_id = accepted["session"]["session_id"]
        ending = time.monotonic()
        ended = await self.call("session.end", {"session_id": session_id,
                                                "outcome": "failed", "reason": "bench"})
        if "error" in ended:
            return
        self.served += 1
        self.release = ("session.end", ending)
        if self.presence == "wrap_up":
            finishing = time.monotonic()
            done = await self.call("wrapup.done", {})
            if "error" not in done:
                self.release = ("wrapup.done", finishing)

    async def _try_break(self) -> None:
        """Go on break; refused while an offer is on its way, which is served first."""
        result = await self.call("presence.set", {"state": "break"})
        if "error" not in result:
            self.release = None
            self.on_break.set()


class Clerks:
    def __init__(self, usernames: list[str], password: str) -> None:
        self.usernames = usernames
        self.password = password
        self.clerks: list[BenchClerk] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.errors: Counter[str] = Counter()
        self.offers: list[tuple[str, float, str]] = []
        self.releases: list[tuple[str, str, float, float, str]] = []

    async def connect(self, url: str) -> dict[str, Any]:
        """Sign in, connect and go available, every clerk; returns how many made it."""
        gate = asyncio.Semaphore(LOGIN_CONCURRENCY)
        started = time.monotonic()

        async def one(name: str) -> BenchClerk | None:
            async with gate:
                try:
                    async with aiohttp.ClientSession() as http:
                        response = await http.post(f"{url}/api/auth/login", json={
                            "username": name, "password": self.password})
                        if response.status != 200:
                            self.errors[f"login: {response.status}"] += 1
                            return None
                        cookie = response.cookies["xw_session"].value
                    client = socketio.AsyncClient(reconnection=False, handle_sigint=False)
                    clerk = BenchClerk(name, client, self.errors, self.offers, self.releases)
                    await client.connect(url, namespaces=[NAMESPACE], transports=["websocket"],
                                         headers={"Cookie": f"xw_session={cookie}"},
                                         wait_timeout=20)
                except Exception as exc:
                    self.errors[f"connect: {type(exc).__name__}: {str(exc)[:60]}"] += 1
                    return None
            result = await clerk.call("presence.set", {"state": "available"})
            return None if "error" in result else clerk

        found = await asyncio.gather(*(one(name) for name in self.usernames))
        self.clerks = [c for c in found if c is not None]
        self.tasks = [asyncio.get_running_loop().create_task(c.run()) for c in self.clerks]
        return {"available": len(self.clerks), "errors": dict(self.errors),
                "seconds": time.monotonic() - started}

    async def pause(self, timeout_s: float) -> dict[str, Any]:
        for clerk in self.clerks:
            clerk.inbox.put_nowait(("pause", time.monotonic(), {}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(c.on_break.wait() for c in self.clerks)), timeout_s)
        return {"on_break": sum(c.on_break.is_set() for c in self.clerks)}

    async def resume(self) -> None:
        for clerk in self.clerks:
            clerk.inbox.put_nowait(("resume", time.monotonic(), {}))

    async def collect(self) -> dict[str, Any]:
        return {"offers": list(self.offers), "releases": list(self.releases),
                "errors": dict(self.errors), "served": sum(c.served for c in self.clerks)}

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(c.client.disconnect() for c in self.clerks
                               if c.client.connected), return_exceptions=True)
        self.clerks = []
