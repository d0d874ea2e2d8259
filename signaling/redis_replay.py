"""Numbered session events on Redis, so a participant resumes on any node.

The same log as :class:`signaling.replay.ReplayLog` (bounded, numbered per participant,
``None`` when the client has to resync), kept in Redis because the next event of a
session may be sent by another node than the last one (the clerk and the citizen are on
different nodes) and the participant may reconnect to a third. An entry is
``seq\\nevent\\ndata-json``: the script numbers it without decoding anything. Logs expire
a day after their last event; they matter for one session and its grace period.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from signaling.replay import Numbered

# KEYS: list, counter; ARGV: event, data JSON, capacity, ttl seconds. Returns the seq.
_APPEND = """
local seq = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], seq .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return seq
"""


class RedisReplay:
    def __init__(self, redis: Redis, prefix: str, *, capacity: int = 256,
                 ttl_s: int = 24 * 3600) -> None:
        self._redis = redis
        self._prefix = f"{prefix}replay:"
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._append = redis.register_script(_APPEND)

    def _keys(self, participant: str) -> list[str]:
        return [f"{self._prefix}{participant}", f"{self._prefix}{participant}:seq"]

    async def append(self, participant: str, event: str, data: dict[str, Any]) -> Numbered:
        encoded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        seq = await self._append(keys=self._keys(participant),
                                 args=[event, encoded, self._capacity, self._ttl_s])
        return Numbered(int(seq), event, dict(data))

    async def since(self, participant: str, last_seen: int) -> list[Numbered] | None:
        entries_key, seq_key = self._keys(participant)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(seq_key)
            pipe.lrange(entries_key, 0, -1)
            last, raw = await pipe.execute()
        last_seq = int(last or 0)
        if last_seen >= last_seq:
            return []
        entries = [_parse(entry) for entry in raw]
        oldest = entries[0].seq if entries else last_seq + 1
        if max(last_seen, 0) + 1 < oldest:
            return None
        return [e for e in entries if e.seq > last_seen]

    async def reset(self, participant: str) -> None:
        await self._redis.delete(*self._keys(participant))


def _parse(entry: bytes | str) -> Numbered:
    text = entry.decode() if isinstance(entry, bytes) else entry
    seq, event, data = text.split("\n", 2)
    return Numbered(int(seq), event, json.loads(data))
