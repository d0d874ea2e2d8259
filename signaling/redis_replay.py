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
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from signaling.replay import Numbered

# KEYS: list and counter of each participant in turn; ARGV: '1' to start each
# participant's log afresh first (once, however often it appears), capacity, ttl seconds,
# then event and data JSON per participant. Returns the seqs, in order.
_APPEND = """
local fresh, capacity, ttl = ARGV[1] == '1', tonumber(ARGV[2]), ARGV[3]
local seqs, cleared = {}, {}
for i = 1, #KEYS / 2 do
  local list, counter = KEYS[2 * i - 1], KEYS[2 * i]
  if fresh and not cleared[list] then
    redis.call('DEL', list, counter)
    cleared[list] = true
  end
  local seq = redis.call('INCR', counter)
  redis.call('RPUSH', list, seq .. '\\n' .. ARGV[2 * i + 2] .. '\\n' .. ARGV[2 * i + 3])
  redis.call('LTRIM', list, -capacity, -1)
  redis.call('EXPIRE', list, ttl)
  redis.call('EXPIRE', counter, ttl)
  seqs[i] = seq
end
return seqs
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
        return (await self.append_many([(participant, event, data)]))[0]

    async def append_many(self, events: Sequence[tuple[str, str, dict[str, Any]]], *,
                          fresh: bool = False) -> list[Numbered]:
        """Number several participants' events in one round trip (``fresh``: each
        participant's log starts again at 1 first, as a new session does)."""
        keys: list[str] = []
        args: list[Any] = ["1" if fresh else "", self._capacity, self._ttl_s]
        for participant, event, data in events:
            keys += self._keys(participant)
            args += [event, json.dumps(data, ensure_ascii=False, separators=(",", ":"))]
        seqs = await self._append(keys=keys, args=args)
        return [Numbered(int(seq), event, dict(data))
                for seq, (_, event, data) in zip(seqs, events, strict=True)]

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
