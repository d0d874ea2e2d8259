"""``GET /api/cases/{id}/export``: the whole case file as one ZIP, streamed.

The archive holds ``manifest.json`` (the case, its checklist, every document's provenance
and quality, the SHA-256 of every file, the recording references) and each document's
original and processed image. Before the first byte is sent every blob is read once and
checked against its SHA-256 (a missing or altered file fails the export with
``blob_missing`` / ``blob_corrupt`` instead of producing a bad archive) and its CRC-32
taken; that fixes the archive's exact size, sent as ``Content-Length``, so the browser
shows the download's progress for a large case. ``X-Export-Files`` gives the entry count.

Recordings are referenced, not copied (they are large and live under the recordings
directory): ``recordings`` lists every segment file of the case's sessions with its path,
SHA-256, duration and consent, and each document names the segment and the offset into
it at which it was captured (``recording``, null when nothing was being recorded).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from server import app_keys, case_store
from server.case_access import Need
from server.case_http import CaseContext, load_case, record
from server.case_recordings import case_recordings
from server.case_records import CaseRecord, DocumentRecord, ImageRecord
from server.case_views import locate, matter_ref
from server.cases import SlotState, slot_view
from server.catalogue import KioskConfig
from server.errors import XiaowuError
from server.routes_case_documents import blob_missing
from server.storage.types import utcnow
from server.zip_stream import StoredZip, ZipEntry

routes = web.RouteTableDef()
CHUNK = 1024 * 1024
FORMAT = "xiaowu-case-export/1"


@dataclass(frozen=True)
class ExportFile:
    name: str
    image: ImageRecord
    path: Path


@routes.get("/api/cases/{case_id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    ctx = await load_case(request, Need.EXPORT)
    app = request.app
    async with app[app_keys.DB].connect() as conn:
        slots = await case_store.load_checklist(conn, ctx.case.id)
        documents = await case_store.load_documents(conn, ctx.case.id)
        recordings = await case_recordings(conn, ctx.case, documents)
    store = app[app_keys.BLOBS]
    files: list[ExportFile] = []
    names: dict[tuple[str, str], str] = {}
    for index, document in enumerate(documents, 1):
        for variant, image in (("original", document.original),
                               ("processed", document.processed)):
            name = (f"documents/{index:03d}-{document.slot}-{variant}.{image.extension}")
            names[(document.id, variant)] = name
            files.append(ExportFile(name, image, store.path_for(image.sha256)))
    try:
        crcs = [await asyncio.to_thread(_verify, f) for f in files]
    except XiaowuError as exc:
        async with app[app_keys.DB].begin() as conn:
            await record(conn, request, ctx.principal, "case.export", ctx.case,
                         outcome="failure", detail={"code": exc.code})
        raise
    manifest = json.dumps(build_manifest(app[app_keys.KIOSK_CONFIG], ctx, slots, documents,
                                         names, recordings),
                          ensure_ascii=False, indent=2).encode()
    entries = [ZipEntry("manifest.json", len(manifest), zlib.crc32(manifest))]
    entries += [ZipEntry(f.name, f.image.size, crc) for f, crc in zip(files, crcs, strict=True)]
    archive = StoredZip(entries, utcnow())
    async with app[app_keys.DB].begin() as conn:
        await record(conn, request, ctx.principal, "case.export", ctx.case, detail={
            "files": len(entries), "bytes": archive.total_size})

    response = web.StreamResponse(headers={
        "Content-Type": "application/zip",
        "Content-Disposition": f'attachment; filename="{ctx.case.number}.zip"',
        "Content-Length": str(archive.total_size),
        "X-Export-Files": str(len(entries)),
        "Cache-Control": "private, no-store",
    })
    await response.prepare(request)
    await response.write(archive.local_header(0) + manifest)
    for index, file in enumerate(files, 1):
        await response.write(archive.local_header(index))
        await _stream(response, file.path)
    await response.write(archive.central_directory())
    await response.write_eof()
    return response


def _verify(file: ExportFile) -> int:
    """Read a blob once: its SHA-256 must be its name; returns its CRC-32."""
    digest, crc, size = hashlib.sha256(), 0, 0
    try:
        with open(file.path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
    except FileNotFoundError:
        raise blob_missing(file.image.sha256) from None
    if digest.hexdigest() != file.image.sha256 or size != file.image.size:
        raise XiaowuError("材料文件已损坏", f"blob {file.image.sha256} does not match its hash",
                          code="blob_corrupt", status=500,
                          detail={"sha256": file.image.sha256})
    return crc


async def _stream(response: web.StreamResponse, path: Path) -> None:
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, CHUNK):
            await response.write(chunk)
    finally:
        await asyncio.to_thread(fh.close)


def build_manifest(config: KioskConfig, ctx: CaseContext, slots: list[SlotState],
                   documents: list[DocumentRecord], names: dict[tuple[str, str], str],
                   recordings: list[dict[str, Any]]) -> dict[str, Any]:
    """The case file's table of contents. It carries the full identity number: an export
    is the case file itself, for the archive, not a list."""
    case: CaseRecord = ctx.case
    return {
        "format": FORMAT,
        "exported_at": utcnow().isoformat(),
        "exported_by": ctx.principal.subject,
        "case": {
            "case_id": case.id, "number": case.number, "status": str(case.status),
            "matter": matter_ref(config, case.matter), "ticket_id": case.ticket_id,
            "session_id": case.session_id, "channel": case.channel, "hut_id": case.hut_id,
            "clerk": case.clerk, "department": case.department,
            "applicant_name": case.applicant_name, "id_number": case.id_number,
            "notes": case.notes, "outcome": case.outcome, "rating": case.rating,
            "rating_reason": case.rating_reason,
            "created_at": case.created_at.isoformat(),
            "closed_at": None if case.closed_at is None else case.closed_at.isoformat(),
        },
        "checklist": [slot_view(s) for s in slots],
        "documents": [{
            "document_id": d.id, "slot": d.slot, "path": d.path, "session_id": d.session_id,
            "clerk": d.clerk, "captured_by": d.actor, "captured_at": d.captured_at.isoformat(),
            "recording": locate(d, recordings), "quality": d.quality,
            "original": _file(names[(d.id, "original")], d.original),
            "processed": _file(names[(d.id, "processed")], d.processed),
        } for d in documents],
        "recordings": recordings,
    }


def _file(name: str, image: ImageRecord) -> dict[str, Any]:
    return {"file": name, "sha256": image.sha256, "size": image.size,
            "content_type": image.content_type, "width": image.width, "height": image.height}
