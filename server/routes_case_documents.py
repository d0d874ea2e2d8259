"""Documents into a case (upload from a page, snapshot of the live stream) and out of it.

An upload is written crash-safe in this order: the pipeline runs in a worker process;
both images are written to the blob store and fsync'd; then the document row, its blob
rows, its idempotency key, the case's status and the audit line commit in one
transaction; only then is ``201`` sent. A crash before the commit leaves files no row
references, which the blob sweep removes; a ``201`` always has its row and its files.

``Idempotency-Key`` (required for uploads, optional for snapshots) makes a retry safe:
the same key with the same request answers ``200`` with the first document; with a
different request, ``409 idempotency_key_reused``, checked before any work is done.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import sqlalchemy as sa
from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field

from media.documents.pipeline import ProcessedCapture
from media.intake import ImageTooLarge
from server import app_keys, case_store
from server.case_access import Need
from server.case_http import CaseContext, load_case, locked, record, tell
from server.case_records import CaseRecord, DocumentRecord
from server.case_views import document_event, document_view
from server.cases import SlotSpec, find_slot, require_open, started
from server.errors import BadRequest, Conflict, NotFound, XiaowuError
from server.http_support import parse_body
from signaling.sessions import SessionState

routes = web.RouteTableDef()
KEY_HEADER = "Idempotency-Key"
_CHUNK = 256 * 1024
_MAX_PARTS = 4
_MAX_FIELD = 128


class SnapshotRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot: str = Field(min_length=1, max_length=64)
    source: Literal["citizen", "clerk"] = "citizen"
    track: int = Field(0, ge=0, le=7)
    """Index of the participant's video track; a booth sends its face camera as 0 and its
    document camera as 1."""


@routes.post("/api/cases/{case_id}/documents")
async def upload(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.UPLOAD)
    require_open(ctx.case.status)
    key = idempotency_key(request, required=True)
    assert key is not None
    settings = request.app[app_keys.SETTINGS]
    slot_key, data = await read_upload(request, settings.upload_max_bytes)
    spec = await _slot(request, ctx.case, slot_key)
    fingerprint = _fingerprint(b"upload", slot_key.encode(), data)
    earlier = await replay(request, ctx, key, fingerprint)
    if earlier is not None:
        return earlier
    capture = await request.app[app_keys.CAPTURE_POOL].upload(
        data, spec.kind, aspect_ratio=spec.aspect_ratio, max_bytes=settings.upload_max_bytes,
        max_pixels=settings.upload_max_pixels)
    return await store(request, ctx, spec, capture, "upload", (key, fingerprint))


@routes.post("/api/cases/{case_id}/snapshots")
async def snapshot(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.EDIT)
    body = await parse_body(request, SnapshotRequest)
    require_open(ctx.case.status)
    spec = await _slot(request, ctx.case, body.slot)
    key = idempotency_key(request, required=False)
    fingerprint = _fingerprint(b"snapshot", body.slot.encode(), body.source.encode(),
                               str(body.track).encode())
    if key is not None:
        earlier = await replay(request, ctx, key, fingerprint)
        if earlier is not None:
            return earlier
    media = request.app.get(app_keys.MEDIA)
    if media is None:
        raise Conflict("当前模式下不能从视频截图", "the server carries no media (p2p mode)",
                       code="snapshot_unavailable")
    session = await request.app[app_keys.QUEUE].store.get_session(ctx.case.session_id)
    if session is None or session.state not in (SessionState.CONNECTING, SessionState.ACTIVE):
        raise Conflict("视频通话未在进行", "the case's session has no live call",
                       code="session_not_live")
    queue_node = request.app[app_keys.QUEUE].node.id
    if session.media_node is not None and session.media_node != queue_node:
        raise Conflict("该通话的视频在另一台服务器上", "the call's media is held by another node",
                       code="media_elsewhere", detail={"media_node": session.media_node})
    frame = await media.snapshot(ctx.case.session_id, body.source, body.track)
    capture = await request.app[app_keys.CAPTURE_POOL].frame(
        frame, spec.kind, aspect_ratio=spec.aspect_ratio)
    idempotency = None if key is None else (key, fingerprint)
    return await store(request, ctx, spec, capture, "snapshot", idempotency)


@routes.get(r"/api/cases/{case_id}/documents/{document_id}/{variant:original|processed}")
async def image(request: web.Request) -> web.Response:
    ctx = await load_case(request, Need.READ)
    variant = request.match_info["variant"]
    async with request.app[app_keys.DB].connect() as conn:
        document = await case_store.get_document(conn, ctx.case.id,
                                                 request.match_info["document_id"])
    if document is None:
        raise NotFound("没有该材料", "no such document", code="document_not_found")
    picture = document.original if variant == "original" else document.processed
    try:
        data = await request.app[app_keys.BLOBS].get(picture.sha256)
    except FileNotFoundError:
        raise blob_missing(picture.sha256) from None
    async with request.app[app_keys.DB].begin() as conn:
        await record(conn, request, ctx.principal, "case.document.read", ctx.case,
                     detail={"document_id": document.id, "variant": variant})
    return web.Response(body=data, content_type=picture.content_type, headers={
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="{document.id}-{variant}.{picture.extension}"',
    })


def blob_missing(sha256: str) -> XiaowuError:
    return XiaowuError("材料文件缺失", f"blob {sha256} is missing from the store",
                       code="blob_missing", status=500, detail={"sha256": sha256})


def idempotency_key(request: web.Request, *, required: bool) -> str | None:
    key = request.headers.get(KEY_HEADER)
    if key is None:
        if required:
            raise BadRequest("缺少 Idempotency-Key 请求头", f"the {KEY_HEADER} header is required",
                             code="idempotency_key_required")
        return None
    if not 1 <= len(key) <= 128 or not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise BadRequest("Idempotency-Key 无效", f"{KEY_HEADER} must be 1-128 visible ASCII",
                         code="idempotency_key_invalid")
    return key


async def read_upload(request: web.Request, max_bytes: int) -> tuple[str, bytes]:
    """The ``slot`` field and the ``file`` part, the file capped at ``max_bytes`` while it
    streams in (the body is never held beyond the cap)."""
    if request.content_type != "multipart/form-data":
        raise BadRequest("请以 multipart/form-data 上传", "send multipart/form-data",
                         code="multipart_required")
    reader = await request.multipart()
    slot: str | None = None
    data: bytes | None = None
    for _ in range(_MAX_PARTS):
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name not in ("slot", "file"):
            raise _bad_field(getattr(part, "name", None) or "(part)")
        if part.name == "slot":
            raw = await _read_capped(part, _MAX_FIELD)
            if raw is None:
                raise _bad_field("slot")
            slot = raw.decode("utf-8", "replace").strip()
        else:
            data = await _read_capped(part, max_bytes)
            if data is None:
                raise ImageTooLarge(request.content_length or max_bytes + 1, max_bytes)
    else:
        raise _bad_field("(parts)")
    if data is None:
        raise BadRequest("没有收到文件", "no file part", code="file_missing")
    if not slot:
        raise _bad_field("slot")
    return slot, data


async def _read_capped(part: BodyPartReader, cap: int) -> bytes | None:
    buffer = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        buffer += chunk
        if len(buffer) > cap:
            return None
    return bytes(buffer)


def _bad_field(name: str) -> BadRequest:
    return BadRequest(f"字段 {name} 无效", f"{name}: unexpected or invalid",
                      code="invalid_payload", detail={"field": name})


def _fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def _slot(request: web.Request, case: CaseRecord, key: str) -> SlotSpec:
    async with request.app[app_keys.DB].connect() as conn:
        slots = await case_store.load_checklist(conn, case.id)
    return find_slot((s.spec for s in slots), key)


async def replay(request: web.Request, ctx: CaseContext, key: str,
                 fingerprint: str) -> web.Response | None:
    """The answer to a retry of an earlier request with this key, or None if there was none."""
    async with request.app[app_keys.DB].connect() as conn:
        earlier = await case_store.upload_key(conn, ctx.case.id, key)
        document = None if earlier is None else await case_store.get_document(
            conn, ctx.case.id, earlier[1])
    if earlier is None or document is None:
        return None
    if earlier[0] != fingerprint:
        raise Conflict("该 Idempotency-Key 已用于另一次上传", "the key was used for another upload",
                       code="idempotency_key_reused", detail={"document_id": earlier[1]})
    async with request.app[app_keys.DB].begin() as conn:
        await record(conn, request, ctx.principal, "case.document.replay", ctx.case,
                     detail={"document_id": document.id})
    return _answer(ctx.case, document, replayed=True)


async def store(request: web.Request, ctx: CaseContext, spec: SlotSpec,
                capture: ProcessedCapture, path: str,
                idempotency: tuple[str, str] | None) -> web.Response:
    blobs = request.app[app_keys.BLOBS]
    original = await blobs.put(capture.original.data)
    processed = await blobs.put(capture.processed.data)
    try:
        async with request.app[app_keys.DB].begin() as conn:
            case = await locked(conn, ctx.case)
            status = started(case.status)
            document = await case_store.add_document(
                conn, case=case, slot=spec.key, path=path, actor=ctx.principal.subject,
                blobs=[(original, capture.original.content_type, capture.original.width,
                        capture.original.height),
                       (processed, capture.processed.content_type, capture.processed.width,
                        capture.processed.height)],
                quality=capture.quality_json(), recording_offset_s=None,
                idempotency=idempotency)
            case = await case_store.update_case(conn, case, status=str(status))
            await record(conn, request, ctx.principal, "case.document.add", case, detail={
                "document_id": document.id, "slot": spec.key, "path": path,
                "verdict": capture.quality.verdict, "original_sha256": original.sha256,
                "processed_sha256": processed.sha256})
    except sa.exc.IntegrityError:
        if idempotency is None:
            raise
        # A retry with the same key raced this request and committed first.
        earlier = await replay(request, ctx, *idempotency)
        if earlier is None:
            raise
        return earlier
    await tell(request, case, "case.document", document_event(case, document))
    return _answer(case, document, replayed=False)


def _answer(case: CaseRecord, document: DocumentRecord, *, replayed: bool) -> web.Response:
    body: dict[str, Any] = {"document": document_view(case.id, document),
                            "status": str(case.status), "replayed": replayed}
    return web.json_response(body, status=200 if replayed else 201)
