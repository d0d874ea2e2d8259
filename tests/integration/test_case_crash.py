"""Crash safety of document uploads, with the real server process: SIGKILL during 50
concurrent uploads, restart, and every acknowledged document is there, whole, with
nothing left over; retrying every upload with its key then completes the set without a
duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from server.accounts import ClerkSpec, create_clerk
from server.case_openings import Opening, open_case
from server.catalogue_loader import load_kiosk_config
from server.settings import DEFAULT_CONFIG_DIR
from server.storage import tables
from server.storage.blobs import BlobStore
from server.storage.database import Database
from tests.unit.document_photos import document_frame, jpeg_of

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-horse-42"
UPLOADS = 50
KILL_AFTER = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``python -m server serve`` in its own process group, so SIGKILL takes its pipeline
    workers (and their forkserver) down with it, as a power cut or the OOM killer would."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("XIAOWU_")}
        env |= {"XIAOWU_DOCUMENT_WORKERS": "2", "XIAOWU_MEDIA_MODE": "p2p"}
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(self.port),
             "--data-dir", str(data_dir)],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                assert self.proc.poll() is None, "the server exited"
                try:
                    async with http.get(self.url("/readyz")) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the server did not become ready")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            # The group may still hold pipeline workers of a server that died on its own.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture
def photos() -> list[bytes]:
    """Fifty different small photos of a card (each its own blobs): one scene, each with
    its own mark in a corner of the pad."""
    frame, _ = document_frame(400, 252, size=(640, 480))
    out = []
    for index in range(UPLOADS):
        marked = frame.copy()
        marked[8:24, 8:24] = (index * 5, 255 - index * 5, 128)
        out.append(jpeg_of(marked))
    return out


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "data").mkdir()
    yield tmp_path / "data"


async def prepare(data_dir: Path) -> str:
    """Schema, a clerk and a case of theirs, written before the server starts."""
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'xiaowu.sqlite3'}")
    try:
        await db.upgrade()
        async with db.begin() as conn:
            await create_clerk(conn, ClerkSpec("wangli", "王丽", "APR", "clerk", ("*",),
                                               ("370500",)), PASSWORD, must_change=False)
        config = load_kiosk_config(DEFAULT_CONFIG_DIR)
        case, _ = await open_case(db, Opening(
            ticket_id="t_crash", session_id="s_crash",
            matter=config.matter("EDU-TQ-CONFIRM"), channel="kiosk", hut_id="dy-hall-01",
            owner="kiosk:kd_crash", clerk="wangli", prefix="DY"))
        return case.id
    finally:
        await db.close()


async def upload_all(server: ServerProcess, case_id: str, photos: list[bytes],
                     acked: dict[str, dict[str, Any]], *, kill_after: int | None) -> int:
    """Upload every photo at once; SIGKILL the server once ``kill_after`` are acknowledged.
    Returns how many requests failed without an answer."""
    enough = asyncio.Event()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(server.url("/api/auth/login"),
                             json={"username": "wangli", "password": PASSWORD}) as response:
            assert response.status == 200, await response.text()
            csrf = (await response.json())["csrf_token"]

        async def one(index: int) -> bool:
            form = aiohttp.FormData()
            form.add_field("slot", "diploma")
            form.add_field("file", photos[index], filename=f"{index}.jpg",
                           content_type="image/jpeg")
            key = f"crash-{index}"
            try:
                async with http.post(server.url(f"/api/cases/{case_id}/documents"), data=form,
                                     headers={"X-CSRF-Token": csrf,
                                              "Idempotency-Key": key}) as response:
                    body = await response.json()
                    assert response.status in (200, 201), body
            except (TimeoutError, aiohttp.ClientError):
                return False
            if response.status == 201 or key not in acked:
                previous = acked.setdefault(key, body["document"])
                assert previous["document_id"] == body["document"]["document_id"]
            if kill_after is not None and len(acked) >= kill_after:
                enough.set()
            return True

        async def killer() -> None:
            await enough.wait()
            server.kill()

        watcher = asyncio.create_task(killer()) if kill_after is not None else None
        answered = await asyncio.gather(*(one(i) for i in range(len(photos))))
        if watcher is not None:
            watcher.cancel()
        return answered.count(False)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_sigkill_mid_upload_loses_no_acknowledged_document_and_leaves_no_orphan(
    data_dir: Path, tmp_path: Path, photos: list[bytes],
) -> None:
    case_id = await prepare(data_dir)
    acked: dict[str, dict[str, Any]] = {}
    first = ServerProcess(data_dir, tmp_path / "server.log")
    try:
        await first.ready()
        unanswered = await upload_all(first, case_id, photos, acked, kill_after=KILL_AFTER)
    finally:
        first.stop()
    assert len(acked) >= KILL_AFTER
    assert unanswered > 0, "the kill came after the last upload: nothing was cut off"
    acknowledged = dict(acked)
    # Whether the kill caught a blob between its rename and its commit is luck; make sure
    # one such file exists, as that crash leaves it (written, fsync'd, no row).
    planted = await BlobStore(data_dir / "blobs").put(b"stored, then the process died")

    second = ServerProcess(data_dir, tmp_path / "server.log")
    try:
        await second.ready()  # the start-up sweep has run by now
        store = BlobStore(data_dir / "blobs")
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'xiaowu.sqlite3'}")
        try:
            async with db.connect() as conn:
                documents = {r.id: r for r in await conn.execute(sa.select(
                    tables.case_documents))}
                blob_rows = set((await conn.execute(sa.select(tables.blobs.c.sha256)))
                                .scalars())
        finally:
            await db.close()
        for document in acknowledged.values():
            row = documents[document["document_id"]]
            for variant in ("original", "processed"):
                sha = getattr(row, f"{variant}_sha256")
                assert sha == document[variant]["sha256"]
                assert sha256_of(store.path_for(sha)) == sha
        files = {path.name for path in store.iter_files()}
        assert files == blob_rows, "orphan files, or rows without their file"
        assert planted.sha256 not in files
        assert not store.tmp.exists() or not list(store.tmp.iterdir())

        # Every upload again with its key: the acknowledged ones answer with their first
        # document, the rest are stored now; no key yields two documents.
        assert await upload_all(second, case_id, photos, acked, kill_after=None) == 0
        assert all(acked[k]["document_id"] == d["document_id"]
                   for k, d in acknowledged.items())
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'xiaowu.sqlite3'}")
        try:
            async with db.connect() as conn:
                count = await conn.scalar(sa.select(sa.func.count())
                                          .select_from(tables.case_documents))
        finally:
            await db.close()
        assert count == UPLOADS == len({d["document_id"] for d in acked.values()})
    finally:
        second.stop()
