"""A ZIP archive of stored (uncompressed) entries whose every byte is known in advance.

Why not :mod:`zipfile`: a case export is streamed to the browser as it is read from the
blob store, and the browser shows progress only if the response says its length up front.
With stored entries whose sizes and CRC-32s are known before the first byte, the layout
is fixed (local header + data per entry, then the central directory), so the exact total
is a sum and no data descriptor is needed. Compression would gain nothing: the entries
are JPEG and PNG images and one small JSON manifest.

Plain ZIP only (no ZIP64): at most 65 535 entries and 4 GiB; names are UTF-8 (flag 11).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_VERSION = 20  # 2.0: stored entries, no ZIP64
_MADE_BY = (3 << 8) | _VERSION  # Unix, so the external attributes carry a file mode
_UTF8 = 0x0800
_FILE_MODE = 0o100644 << 16
LIMIT = 0xFFFFFFFF


@dataclass(frozen=True)
class ZipEntry:
    name: str
    size: int
    crc32: int


class StoredZip:
    def __init__(self, entries: Sequence[ZipEntry], modified: datetime) -> None:
        if len(entries) > 0xFFFF:
            raise ValueError(f"too many entries for a plain ZIP: {len(entries)}")
        self.entries = tuple(entries)
        self._time, self._date = _dos_time(modified)
        self.offsets: list[int] = []
        offset = 0
        for entry in self.entries:
            self.offsets.append(offset)
            offset += _LOCAL.size + len(entry.name.encode()) + entry.size
        self.directory_offset = offset
        self.directory_size = sum(_CENTRAL.size + len(e.name.encode()) for e in self.entries)
        self.total_size = offset + self.directory_size + _END.size
        if self.total_size > LIMIT or any(e.size > LIMIT for e in self.entries):
            raise ValueError(f"archive of {self.total_size} bytes needs ZIP64")

    def local_header(self, index: int) -> bytes:
        entry = self.entries[index]
        name = entry.name.encode()
        return _LOCAL.pack(0x04034B50, _VERSION, _UTF8, 0, self._time, self._date,
                           entry.crc32, entry.size, entry.size, len(name), 0) + name

    def central_directory(self) -> bytes:
        parts = []
        for entry, offset in zip(self.entries, self.offsets, strict=True):
            name = entry.name.encode()
            parts.append(_CENTRAL.pack(
                0x02014B50, _MADE_BY, _VERSION, _UTF8, 0, self._time, self._date, entry.crc32,
                entry.size, entry.size, len(name), 0, 0, 0, 0, _FILE_MODE, offset) + name)
        count = len(self.entries)
        parts.append(_END.pack(0x06054B50, 0, 0, count, count, self.directory_size,
                               self.directory_offset, 0))
        return b"".join(parts)


def _dos_time(moment: datetime) -> tuple[int, int]:
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return time, date
