"""The application factory: one aiohttp app carrying HTTP routes, socket.io and the
resources they share, all owned by cleanup contexts and closed on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import socketio
import structlog
from aiohttp import web
from redis.exceptions import RedisError

from media.endpoint import LocalMediaEndpoint
from media.errors import MediaError
from media.recorder import RecordingSettings, Segment
from media.relay import RelaySettings
from media.workers import WorkerMediaEndpoint
from server import (
    app_keys,
    case_export,
    routes_auth,
    routes_case_documents,
    routes_cases,
    routes_catalogue,
    routes_devices,
    routes_ice,
    routes_ops,
    routes_stats,
)
from server.capture_pool import CapturePool
from server.case_events import CaseEvents
from server.catalogue import KioskConfig
from server.catalogue_loader import load_kiosk_config
from server.gc_tuning import gc_ctx
from server.http_support import errors_middleware, origin_middleware
from server.ice import server_ice_servers
from server.metrics import Metrics
from server.node_watch import nodes_ctx
from server.queue_journal import DbJournal
from server.recording_control import RecordingControl
from server.redis_manager import BackgroundPublishingRedisManager
from server.settings import REPO_ROOT, Settings
from server.sms import LogSmsSender, SmsSender
from server.socket_server import SocketServer
from server.storage.blobs import BlobStore, sweep_orphans
from server.storage.database import Database
from server.web_pages import add_pages
from signaling.media_signaling import MediaNode
from signaling.memory_store import MemoryStore
from signaling.namespaces import CitizenNamespace, ClerkNamespace, SupervisorNamespace
from signaling.notifier import SocketNotifier
from signaling.queue_service import QueueService, QueueTimings
from signaling.redis_nodes import RedisNodes
from signaling.redis_store import RedisStore
from signaling.redis_store import connect as connect_redis
from signaling.store import QueueStore

log = structlog.get_logger("xiaowu.app")
CLIENT_WEB = REPO_ROOT / "client_web"
MAX_SOCKET_MESSAGE = 64 * 1024
MAX_REQUEST_BODY = 16 * 1024 * 1024


def create_app(settings: Settings, *, config: KioskConfig | None = None,
               sms: SmsSender | None = None,
               database_schema: str | None = None) -> web.Application:
    """Build the app. The kiosk configuration is validated here, before anything listens."""
    if config is None:
        config = load_kiosk_config(settings.config_dir)
    app = web.Application(middlewares=[errors_middleware, origin_middleware],
                          client_max_size=MAX_REQUEST_BODY)
    app[app_keys.SETTINGS] = settings
    app[app_keys.KIOSK_CONFIG] = config
    app[app_keys.METRICS] = Metrics()
    app[app_keys.SMS] = sms or LogSmsSender()
    app[app_keys.BLOBS] = BlobStore(settings.blob_dir)
    app[app_keys.DB] = Database(settings.effective_database_url,
                                schema=database_schema or settings.database_schema)
    app.cleanup_ctx.append(gc_ctx)
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_blob_sweep_ctx)
    app[app_keys.CAPTURE_POOL] = CapturePool(settings.document_workers,
                                             timeout_s=settings.capture_timeout_s)
    app.cleanup_ctx.append(_capture_ctx)

    store, manager = _queue_backend(settings)
    sio = SocketServer(
        client_manager=manager,
        async_mode="aiohttp",
        cors_allowed_origins=settings.origins,
        max_http_buffer_size=MAX_SOCKET_MESSAGE,
        logger=False,
        engineio_logger=False,
    )
    journal = DbJournal(app[app_keys.DB])
    media = _media_endpoint(app, settings) if settings.media_mode == "server" else None
    notifier = SocketNotifier(sio)
    cases = CaseEvents(app[app_keys.DB], config, notifier, settings)
    node = MediaNode(settings.node_id, settings.base_url)
    nodes = (RedisNodes(store.redis, settings.redis_prefix, node, ttl_s=settings.node_ttl_s)
             if isinstance(store, RedisStore) else None)
    queue = QueueService(
        store, config, notifier, journal,
        QueueTimings(offer_timeout=settings.offer_timeout_s, wrap_up=settings.wrap_up_s,
                     grace=settings.grace_s, miss_limit=settings.miss_limit),
        media=media, cases=cases, node=node,
        forward=nodes.forward if nodes is not None else None,
        online=nodes.participant_online if nodes is not None else None,
        announce=nodes.announce_changed if nodes is not None else None,
    )
    if media is not None:
        app[app_keys.MEDIA] = media
    if isinstance(media, WorkerMediaEndpoint):
        app.cleanup_ctx.append(_media_workers_ctx)
    for namespace in ("/kiosk", "/citizen"):
        sio.register_namespace(CitizenNamespace(app, namespace, queue, journal))
    consoles = ClerkNamespace(app, queue, journal)
    sio.register_namespace(consoles)
    app[app_keys.CONSOLES] = consoles
    sio.register_namespace(SupervisorNamespace(app, queue, journal))
    sio.attach(app)
    app[app_keys.SIO] = sio
    app[app_keys.JOURNAL] = journal
    app[app_keys.QUEUE] = queue
    app[app_keys.CASE_EVENTS] = cases
    if isinstance(store, RedisStore):
        app.cleanup_ctx.append(_redis_ctx)
    app[app_keys.RECORDING] = RecordingControl(app[app_keys.DB], queue, media,
                                               settings.recordings_dir)
    app.cleanup_ctx.append(_queue_ctx)
    if nodes is not None:
        app[app_keys.NODES] = nodes
        app.cleanup_ctx.append(nodes_ctx)
    for table in (routes_cases.routes, routes_case_documents.routes, case_export.routes):
        app.router.add_routes(table)

    for table in (routes_ops.routes, routes_auth.routes, routes_devices.routes,
                  routes_catalogue.routes, routes_ice.routes, routes_stats.routes):
        app.router.add_routes(table)
    add_pages(app, CLIENT_WEB)
    return app


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = app[app_keys.DB]
    settings = app[app_keys.SETTINGS]
    if settings.auto_migrate:
        await db.upgrade()
    yield
    await db.close()


def _queue_backend(settings: Settings) -> tuple[QueueStore, socketio.AsyncManager | None]:
    """One node keeps the queue in memory. A Redis URL makes it one of several: the queue
    store on Redis and python-socketio's Redis manager, so an emit for a participant
    reaches their socket whichever node holds it. The manager's channel is a
    control channel for every socket of every node: keep Redis on a private,
    authenticated network (docs/operations.md)."""
    if settings.redis_url is None:
        return MemoryStore(), None
    store = RedisStore(connect_redis(settings.redis_url), settings.redis_prefix)
    manager = BackgroundPublishingRedisManager(settings.redis_url,
                                               channel=f"{settings.redis_prefix}socketio")
    return store, manager


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Fail at start, with the URL's host in the message, when Redis cannot be reached;
    close the store's and the manager's connections after the queue has stopped."""
    store = app[app_keys.QUEUE].store
    assert isinstance(store, RedisStore)
    try:
        await store.ping()
    except (OSError, RedisError) as exc:
        raise RuntimeError(f"Redis is not reachable ({type(exc).__name__}: {exc}); "
                           "check XIAOWU_REDIS_URL / REDIS_URL") from exc
    yield
    manager = app[app_keys.SIO].manager
    if isinstance(manager, BackgroundPublishingRedisManager):
        await manager.drain()
    listener = getattr(manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    if getattr(manager, "redis", None) is not None:
        await manager.redis.aclose()
    await store.close()


async def _queue_ctx(app: web.Application) -> AsyncIterator[None]:
    """The journal writer runs while the app does; the queue's timers stop first, then
    the pending case writes are committed, then every session's media stops."""
    journal = app[app_keys.JOURNAL]
    journal.start()
    yield
    await app[app_keys.QUEUE].close()
    await app[app_keys.CASE_EVENTS].close()
    if app_keys.MEDIA in app:
        await app[app_keys.MEDIA].close()
    await journal.close()


def _media_endpoint(app: web.Application,
                    settings: Settings) -> LocalMediaEndpoint | WorkerMediaEndpoint:
    """In the server's own loop, or with ``XIAOWU_MEDIA_WORKERS`` of 2 and more in that
    many worker processes (docs/operations.md, *One media worker per core*)."""
    relay = RelaySettings(ice_servers=server_ice_servers(settings),
                          max_sessions=settings.media_max_sessions)
    recording = RecordingSettings(settings.recordings_dir, settings.recording_segment_s)

    def failed(sid: str, role: str, error: MediaError) -> Awaitable[None]:
        return _media_failed(app, sid, role, error)

    def segment(done: Segment) -> Awaitable[None] | None:
        return app[app_keys.RECORDING].segment_done(done)

    workers = settings.media_worker_count
    if workers >= 2:
        return WorkerMediaEndpoint(workers, relay, on_failure=failed, recording=recording,
                                   on_segment=segment)
    return LocalMediaEndpoint(relay, on_failure=failed, recording=recording,
                              on_segment=segment)


async def _media_workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Media workers start with the server, not at the first offer (each imports aiortc);
    the queue's clean-up stops them after the last session has ended."""
    media = app[app_keys.MEDIA]
    assert isinstance(media, WorkerMediaEndpoint)
    await media.start()
    yield


async def _media_failed(app: web.Application, session_id: str, role: str,
                        error: MediaError) -> None:
    log.warning("media.failed", session=session_id, role=role, code=error.code)
    await app[app_keys.QUEUE].media_failed(session_id, role, error.code, error.message)


async def _capture_ctx(app: web.Application) -> AsyncIterator[None]:
    """The document pipeline's worker processes start with the app (or at the first capture
    when ``capture_warm_start`` is off) and end with it."""
    pool = app[app_keys.CAPTURE_POOL]
    warming = (asyncio.create_task(pool.warm())
               if app[app_keys.SETTINGS].capture_warm_start else None)
    yield
    if warming is not None and not warming.done():
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
    await pool.close()


async def _blob_sweep_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sweep orphans at start, then once per grace period (see storage/blobs.py)."""
    settings = app[app_keys.SETTINGS]
    db, store = app[app_keys.DB], app[app_keys.BLOBS]

    async def sweep(grace_s: float) -> None:
        removed = await sweep_orphans(db, store, grace_s=grace_s)
        if removed:
            log.warning("blobs.orphans_removed", count=len(removed))

    # A lone node writes nothing before it listens, so at start nothing is in flight and
    # every unreferenced file is an orphan; with shared storage another node may be mid-write.
    await sweep(0 if settings.redis_url is None else settings.blob_sweep_grace_s)

    async def periodic() -> None:
        while True:
            await asyncio.sleep(max(settings.blob_sweep_grace_s, 60))
            try:
                await sweep(settings.blob_sweep_grace_s)
            except Exception:
                log.exception("blobs.sweep_failed")

    task = asyncio.create_task(periodic())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
