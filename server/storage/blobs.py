"""Content-addressed blob store on a local (or shared) directory.

A blob is written to a temporary file, fsync'd and renamed into place *before* the
database row that references it commits; a crash in between leaves a file with no row,
which the sweep removes. The opposite order could leave a row pointing at nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage import tables
from server.storage.database import Database, insert_ignore
from server.storage.types import utcnow

_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    size: int


def _is_sha256(name: str) -> bool:
    return len(name) == 64 and set(name) <= _SHA256_HEX


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path_for(self, sha256: str) -> Path:
        if not _is_sha256(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _write(self, data: bytes) -> BlobRef:
        digest = hashlib.sha256(data).hexdigest()
        final = self.path_for(digest)
        if final.exists():
            return BlobRef(digest, len(data))
        self.tmp.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = self.tmp / f"{digest}.{os.getpid()}.{time.monotonic_ns()}"
        with open(temp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, final)
        _fsync_dir(final.parent)
        return BlobRef(digest, len(data))

    async def put(self, data: bytes) -> BlobRef:
        """Write ``data`` durably; returns its address. Disk work runs off the event loop."""
        return await asyncio.to_thread(self._write, data)

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    async def get(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.read, sha256)

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()

    def iter_files(self) -> Iterator[Path]:
        if not self.root.exists():
            return
        for first in self.root.iterdir():
            if first == self.tmp or not first.is_dir():
                continue
            for second in first.iterdir():
                if second.is_dir():
                    yield from (p for p in second.iterdir() if p.is_file())


async def register_blob(
    conn: AsyncConnection, ref: BlobRef, content_type: str
) -> None:
    """Record the blob in the same transaction as the row that references it."""
    await insert_ignore(
        conn,
        tables.blobs,
        {"sha256": ref.sha256, "size": ref.size, "content_type": content_type,
         "created_at": utcnow()},
    )


async def sweep_orphans(db: Database, store: BlobStore, *, grace_s: float) -> list[str]:
    """Remove blob files (and stale temp files) that no row references.

    Files younger than ``grace_s`` are kept: on shared storage another node may be
    between its rename and its commit. Returns the removed digests.
    """
    cutoff = time.time() - grace_s

    def _candidates() -> tuple[list[Path], list[Path]]:
        old = [p for p in store.iter_files() if p.stat().st_mtime <= cutoff]
        temps = []
        if store.tmp.exists():
            temps = [p for p in store.tmp.iterdir() if p.stat().st_mtime <= cutoff]
        return old, temps

    files, temps = await asyncio.to_thread(_candidates)
    removed: list[str] = []
    for start in range(0, len(files), 500):
        batch = {p.name: p for p in files[start : start + 500] if _is_sha256(p.name)}
        async with db.connect() as conn:
            known = set(
                (
                    await conn.execute(
                        sa.select(tables.blobs.c.sha256).where(
                            tables.blobs.c.sha256.in_(list(batch))
                        )
                    )
                ).scalars()
            )
        for name, path in batch.items():
            if name not in known:
                await asyncio.to_thread(path.unlink, True)
                removed.append(name)
    for temp in temps:
        await asyncio.to_thread(temp.unlink, True)
    return removed
