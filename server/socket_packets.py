"""socket.io packets of this server: JSON only, encoded with orjson.

python-socketio checks every outgoing payload for ``bytes`` (``Packet.data_is_binary``
walks the whole structure, on every emit and every ack) and encodes it with the standard
library's ``json``: together about a tenth of the server's CPU per join cycle in
bench/pairing.py. No Xiaowu event carries binary data (document photos go over HTTP), so
:class:`JsonPacket` turns binary events off with the library's own class switch and
encodes with orjson. A payload that holds ``bytes`` by mistake fails loudly at encode
(``TypeError``) instead of silently becoming a binary event the pages cannot read.

orjson writes UTF-8 rather than ``\\uXXXX`` escapes (Chinese text is a third the size on
the wire), refuses NaN and infinities, which are not JSON, and nesting deeper than 1,024
levels, where the standard library would hit Python's recursion limit.
"""

from __future__ import annotations

from typing import Any

import orjson
from socketio import packet


class OrjsonCodec:
    """The ``dumps``/``loads`` pair python-socketio calls on ``Packet.json``."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        # keyword arguments (``separators``) are the standard library's; orjson's output
        # is already compact
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    @staticmethod
    def loads(text: str | bytes) -> Any:
        return orjson.loads(text)


class JsonPacket(packet.Packet):  # type: ignore[misc]
    uses_binary_events = False
    json = OrjsonCodec
