"""The stored ZIP writer: its promised size is exact and zipfile reads what it writes."""

from __future__ import annotations

import io
import zipfile
import zlib
from datetime import UTC, datetime

import pytest

from server.zip_stream import StoredZip, ZipEntry


def build(files: dict[str, bytes]) -> tuple[StoredZip, bytes]:
    entries = [ZipEntry(name, len(data), zlib.crc32(data)) for name, data in files.items()]
    archive = StoredZip(entries, datetime(2026, 11, 24, 9, 30, 15, tzinfo=UTC))
    out = bytearray()
    for index, data in enumerate(files.values()):
        out += archive.local_header(index) + data
    out += archive.central_directory()
    return archive, bytes(out)


def test_the_archive_is_exactly_as_long_as_promised_and_reads_back() -> None:
    files = {"manifest.json": b'{"a": 1}', "documents/001-身份证-original.jpg": b"\xff\xd8" * 999,
             "empty.txt": b""}
    archive, data = build(files)
    assert archive.total_size == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == list(files)
        for name, content in files.items():
            assert zf.read(name) == content
        info = zf.getinfo("manifest.json")
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.date_time == (2026, 11, 24, 9, 30, 14)


def test_an_archive_beyond_plain_zip_is_refused() -> None:
    with pytest.raises(ValueError, match="ZIP64"):
        StoredZip([ZipEntry("big", 5 * 1024**3, 0)], datetime(2026, 1, 1, tzinfo=UTC))
