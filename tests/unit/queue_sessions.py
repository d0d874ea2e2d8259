"""Queue services driven directly, without sockets: the demo clerk ``c1``, services that
stand for nodes on one in-memory store, and one citizen served from join to end."""

from __future__ import annotations

import asyncio

from server.catalogue_loader import load_kiosk_config
from server.principals import Principal
from server.settings import DEFAULT_CONFIG_DIR
from signaling.memory_store import MemoryStore
from signaling.protocol import QueueJoin
from signaling.queue_service import QueueService, QueueTimings, clerk_key
from tests.integration.test_queue_race import CountingJournal, SharedNotifier

TEACHER = QueueJoin.model_validate({"matter": "EDU-TQ-CONFIRM"})
CLERK = Principal("clerk", "clerk:c1", display_name="c1", skills=("*",),
                  jurisdictions=("370500",))


def services_on_one_store(count: int, timings: QueueTimings) -> list[QueueService]:
    """``count`` queue services sharing one store and notifier, as nodes would share Redis."""
    store, notifier = MemoryStore(), SharedNotifier()
    config = load_kiosk_config(DEFAULT_CONFIG_DIR)
    return [QueueService(store, config, notifier, CountingJournal(), timings)
            for _ in range(count)]


async def serve(service: QueueService, citizen: Principal) -> None:
    """The citizen joins on ``service`` and clerk ``c1`` (available) serves them to the
    end: offer, accept, connected, completed."""
    await service.join(citizen.subject, citizen, TEACHER)
    notifier = service.notifier
    assert isinstance(notifier, SharedNotifier)
    while True:
        event, data = await asyncio.wait_for(notifier.inbox[clerk_key("c1")].get(), 5)
        if event == "offer":
            break
    await service.accept("c1", data["offer_id"])
    await service.connected(clerk_key("c1"), data["offer_id"])
    await service.end("c1", data["offer_id"], "completed", "served")
