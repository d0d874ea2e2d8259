"""Two nodes, one Redis: 1,000 tickets and 50 clerks racing through offers.

Each node is a :class:`QueueService` on its own :class:`RedisStore` (own connection pool,
own lock tokens, own timers) sharing one key prefix, as two server processes would.
Citizens join on either node at random, in waves of 100, and each clerk works on one of
them, so an offer a node makes often goes to a clerk on the other node and both nodes
dispatch all the time.
Clerks accept, report media, end and skip wrap-up at once; some decline first, so
tickets are re-offered across nodes. The notifier stands in for python-socketio's Redis
manager: it delivers every node's events to the clerk, wherever the clerk is.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.catalogue_loader import load_kiosk_config
from server.principals import Principal
from server.settings import DEFAULT_CONFIG_DIR
from signaling.presence import PresenceEvent
from signaling.protocol import QueueJoin
from signaling.queue_service import QueueService, QueueTimings, clerk_key
from signaling.redis_store import RedisStore, connect
from signaling.sessions import Session, SessionEvent
from signaling.store import TicketRecord

pytestmark = pytest.mark.redis

TICKETS = 1000
CLERKS = 50
WAVE = 100
DECLINE_EVERY = 9
"""Every ninth offer a clerk receives is declined (re-offered, often by the other node)."""
TEACHER = "EDU-TQ-CONFIRM"


class SharedNotifier:
    """Delivers events to clerks on any node and checks, in delivery order, that no
    ticket and no clerk ever has two offers or sessions open at once."""

    def __init__(self) -> None:
        self.inbox: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = defaultdict(
            asyncio.Queue)
        self.open_ticket: dict[str, str] = {}  # ticket -> session
        self.open_clerk: dict[str, str] = {}  # clerk key -> session
        self.session_ticket: dict[str, str] = {}
        self.served: Counter[str] = Counter()
        self.violations: list[str] = []

    async def send(self, participant: str, event: str, data: dict[str, Any], *,
                   local: bool = False) -> None:
        if event == "offer":
            ticket, session = data["ticket_id"], data["offer_id"]
            if ticket in self.open_ticket:
                self.violations.append(f"{ticket} offered as {session} while "
                                       f"{self.open_ticket[ticket]} is open")
            if participant in self.open_clerk:
                self.violations.append(f"{participant} offered {session} while holding "
                                       f"{self.open_clerk[participant]}")
            self.open_ticket[ticket] = self.open_clerk[participant] = session
            self.session_ticket[session] = ticket
        elif event in ("offer.withdrawn", "session.ended") and participant.startswith("clerk:"):
            session = data.get("offer_id") or data["session_id"]
            self.open_clerk.pop(participant, None)
            self.open_ticket.pop(self.session_ticket[session], None)
            if event == "session.ended" and data["outcome"] == "completed":
                self.served[self.session_ticket[session]] += 1
        if participant.startswith("clerk:"):
            self.inbox[participant].put_nowait((event, data))

    async def supervisors(self, event: str, data: dict[str, Any], *,
                          local: bool = False) -> None:
        pass

    async def all_clerks(self, event: str, data: dict[str, Any], *,
                         local: bool = False) -> None:
        pass


class CountingJournal:
    def __init__(self) -> None:
        self.opened: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.close_reasons: Counter[str] = Counter()
        self.all_closed = asyncio.Event()
        self._closing = asyncio.Event()

    def ticket_opened(self, record: TicketRecord) -> None:
        self.opened[record.ticket.id] += 1

    def ticket_closed(self, ticket_id: str, reason: str, at: float) -> None:
        self.closed[ticket_id] += 1
        self.close_reasons[reason] += 1
        self._closing.set()
        if sum(self.closed.values()) >= TICKETS:
            self.all_closed.set()

    async def wait_closed(self) -> None:
        self._closing.clear()
        await self._closing.wait()

    def presence(self, event: PresenceEvent) -> None:
        pass

    def session(self, session: Session, event: SessionEvent | None, matter: str) -> None:
        pass

    def audit(self, *, actor: str, role: str, action: str, object_type: str,
              object_id: str | None, outcome: str,
              detail: dict[str, Any] | None = None) -> None:
        pass


@pytest.fixture
async def nodes(redis_url: str, redis_prefix: str) -> AsyncIterator[
        tuple[list[QueueService], SharedNotifier, CountingJournal]]:
    config = load_kiosk_config(DEFAULT_CONFIG_DIR)
    notifier, journal = SharedNotifier(), CountingJournal()
    timings = QueueTimings(offer_timeout=120, wrap_up=120, grace=120, miss_limit=10_000)
    stores = [RedisStore(connect(redis_url), redis_prefix) for _ in range(2)]
    services = [QueueService(store, config, notifier, journal, timings) for store in stores]
    yield services, notifier, journal
    for service, store in zip(services, stores, strict=True):
        await service.close()
        await store.close()


def _clerk(name: str) -> Principal:
    return Principal("clerk", f"clerk:{name}", display_name=name, skills=("*",),
                     jurisdictions=("370500",))


async def _work(service: QueueService, name: str, notifier: SharedNotifier) -> None:
    """One clerk: take every offer, decline some, serve the rest to the end at once."""
    inbox = notifier.inbox[clerk_key(name)]
    offers = 0
    while True:
        event, data = await inbox.get()
        if event != "offer":
            continue
        offers += 1
        offer_id = data["offer_id"]
        if offers % DECLINE_EVERY == 0:
            await service.decline(name, offer_id)
            continue
        await service.accept(name, offer_id)
        await service.connected(clerk_key(name), offer_id)
        await service.end(name, offer_id, "completed", "served")
        await service.wrapup_done(name)


async def test_two_nodes_1000_tickets_50_clerks_no_double_offer_no_loss(
        nodes: tuple[list[QueueService], SharedNotifier, CountingJournal]) -> None:
    services, notifier, journal = nodes
    rng = random.Random(7)
    for j in range(CLERKS):
        await services[j % 2].clerk_online(_clerk(f"c{j:02d}"))
    workers = [asyncio.create_task(_work(services[j % 2], f"c{j:02d}", notifier))
               for j in range(CLERKS)]

    async def join(i: int) -> None:
        citizen = Principal("citizen", f"citizen:wx-{i}")
        await services[rng.randrange(2)].join(citizen.subject, citizen,
                                              QueueJoin.model_validate({"matter": TEACHER}))

    # Citizens arrive in waves, the first while the clerks are going available, each
    # wave once the queue is down to a few dozen, so both nodes keep dispatching to
    # clerks who come free at the same moments.
    going_available = [services[j % 2].set_presence(f"c{j:02d}", "available")
                       for j in range(CLERKS)]
    await asyncio.gather(*(join(i) for i in range(WAVE)), *going_available)
    for start in range(WAVE, TICKETS, WAVE):
        while sum(journal.opened.values()) - sum(journal.closed.values()) > CLERKS:
            await journal.wait_closed()
        await asyncio.gather(*(join(i) for i in range(start, start + WAVE)))
    try:
        await asyncio.wait_for(journal.all_closed.wait(), 120)
        async with services[0].store.lock:  # no clerk is half-way through a change
            for worker in workers:
                worker.cancel()
            results = await asyncio.gather(*workers, return_exceptions=True)
    finally:
        for worker in workers:
            worker.cancel()
    failures = [r for r in results if not isinstance(r, asyncio.CancelledError)]
    assert failures == []

    assert notifier.violations == []
    assert len(journal.opened) == TICKETS and set(journal.opened.values()) == {1}
    assert journal.closed == journal.opened  # every ticket ended, and only once
    assert journal.close_reasons == Counter({"session_completed": TICKETS})
    assert notifier.served == journal.opened  # each clerk-side end reached a clerk
    store = services[0].store
    assert await store.tickets() == []
    clerks = await store.clerks()
    assert len(clerks) == CLERKS
    assert [c for c in clerks if c.offer_id is not None or c.session_id is not None] == []
    assert sum(c.sessions_today for c in clerks) == TICKETS
