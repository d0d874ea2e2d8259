"""A citizen's replay log is dropped one grace period after their ticket closed, unless
they queued again: mobile citizens are new participants all day long."""

from __future__ import annotations

import asyncio

from server.catalogue_loader import load_kiosk_config
from server.principals import Principal
from server.settings import DEFAULT_CONFIG_DIR
from signaling.memory_store import MemoryStore
from signaling.queue_service import QueueService, QueueTimings
from tests.integration.test_queue_race import CountingJournal, SharedNotifier
from tests.unit.queue_sessions import CLERK, TEACHER, serve

GRACE = 0.05


def _service() -> QueueService:
    return QueueService(MemoryStore(), load_kiosk_config(DEFAULT_CONFIG_DIR),
                        SharedNotifier(), CountingJournal(),
                        QueueTimings(grace=GRACE, wrap_up=0))


async def _serve(service: QueueService, citizen: Principal) -> None:
    """Join, and a clerk serves the citizen to the end (session events are numbered)."""
    await service.clerk_online(CLERK)
    await service.set_presence("c1", "available")
    await serve(service, citizen)


async def test_log_of_a_citizen_served_is_forgotten_after_grace() -> None:
    service = _service()
    citizen = Principal("citizen", "citizen:wx-1")
    try:
        await _serve(service, citizen)
        assert await service.store.events_since(citizen.subject, 0)
        await asyncio.sleep(GRACE * 4)
        assert await service.store.events_since(citizen.subject, 0) == []
    finally:
        await service.close()


async def test_log_of_a_citizen_who_queued_again_is_kept() -> None:
    service = _service()
    citizen = Principal("citizen", "citizen:wx-2")
    try:
        await _serve(service, citizen)
        await service.join(citizen.subject, citizen, TEACHER)
        before = await service.store.events_since(citizen.subject, 0)
        await asyncio.sleep(GRACE * 4)
        assert before and await service.store.events_since(citizen.subject, 0) == before
    finally:
        await service.close()
