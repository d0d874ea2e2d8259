"""Typed keys for everything a request handler may reach through ``request.app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import socketio

    from media.endpoint import MediaEndpoint
    from server.capture_pool import CapturePool
    from server.case_events import CaseEvents
    from server.catalogue import KioskConfig
    from server.metrics import Metrics
    from server.queue_journal import DbJournal
    from server.recording_control import RecordingControl
    from server.settings import Settings
    from server.sms import SmsSender
    from server.storage.blobs import BlobStore
    from server.storage.database import Database
    from signaling.namespaces import ClerkNamespace
    from signaling.queue_service import QueueService
    from signaling.redis_nodes import RedisNodes

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB: web.AppKey[Database] = web.AppKey("db")
BLOBS: web.AppKey[BlobStore] = web.AppKey("blobs")
KIOSK_CONFIG: web.AppKey[KioskConfig] = web.AppKey("kiosk_config")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SMS: web.AppKey[SmsSender] = web.AppKey("sms")
SIO: web.AppKey[socketio.AsyncServer] = web.AppKey("sio")
QUEUE: web.AppKey[QueueService] = web.AppKey("queue")
MEDIA: web.AppKey[MediaEndpoint] = web.AppKey("media")
NODES: web.AppKey[RedisNodes] = web.AppKey("nodes")
CONSOLES: web.AppKey[ClerkNamespace] = web.AppKey("consoles")
JOURNAL: web.AppKey[DbJournal] = web.AppKey("journal")
CAPTURE_POOL: web.AppKey[CapturePool] = web.AppKey("capture_pool")
CASE_EVENTS: web.AppKey[CaseEvents] = web.AppKey("case_events")
RECORDING: web.AppKey[RecordingControl] = web.AppKey("recording")
