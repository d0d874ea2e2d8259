"""The queue's state store on Redis: tickets, clerk presence, offers and sessions shared
by every node of a deployment.

Design: every node dispatches, and an offer is an atomic claim. The claim is one Lua
script that checks, inside Redis, that the ticket exists and has no offer and that the
clerk is ``available`` with no offer, then writes the clerk, the ticket's offer and the
session together; two nodes claiming at the same instant cannot both succeed. This was
chosen over a single dispatcher holding an expiring lease because the lease gives no
safety by itself (a holder stalled past its lease and its successor both dispatch, so
claims must be atomic anyway), adds a hop from the node where the change happened to
the leader, and leaves the queue without offers for up to a lease period when the leader
dies. The rest of the shell's read-modify-write is serialized by :attr:`lock`
(:mod:`signaling.redis_lock`); docs/operations.md has the figures.

Layout under ``prefix`` (one deployment, or one test, per prefix):
``tickets`` hash id -> ticket JSON; ``offers`` hash id -> ``[clerk, session]``;
``owners`` hash participant -> ticket id; ``clerks`` hash id -> clerk JSON;
``sessions`` hash id -> session JSON; ``paused`` set of matter codes; ``lock*`` the lease.

Every write of a ticket, clerk or paused matter also bumps ``version`` and, in the same
script, appends to ``changes`` (a list of the last :data:`LOG_LENGTH` entries, the last
one for the current version) what it wrote: ``t:<ticket>`` (ticket or offer),
``o:<ticket>|<owner>`` (a ticket added or removed, and its owner's entry),
``x:<ticket>|<clerk>`` (a claim), ``c:<clerk>``, ``p:<matter>``. While this node holds
the lock it serves reads from a :class:`Snapshot`; the copy outlives the lease while
``version`` shows nobody else wrote, and when someone did, it is brought up to date with
only the records the log names since the copy's version, which the lock's acquire script
returns with the lease (:mod:`signaling.redis_changes`; no round trip of its own). The whole
state is read only for a node's first lease or when the log does not reach back to the
copy's version (a node that sat out more than :data:`LOG_LENGTH` writes). A full read
decodes only entries whose raw JSON changed since this node last saw them, so a clerk's
dispatcher view (cached on the record) survives it.

A fresh ``version`` (a new deployment, or Redis lost its data) starts at the current
Unix time in microseconds, not at 1: a copy from before the loss is then further behind
than the log reaches (its writes would have to have outrun the clock, one per
microsecond), and is read again whole rather than patched from a log that describes
other writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from signaling.redis_lock import NOT_ASKED, RedisQueueLock
from signaling.redis_replay import RedisReplay
from signaling.replay import Numbered
from signaling.sessions import Session
from signaling.store import ClerkRecord, TicketRecord
from signaling.store_codec import (
    decode_clerk,
    decode_session,
    decode_ticket,
    encode_clerk,
    encode_offer,
    encode_session,
    encode_ticket,
    offer_value,
)
from signaling.store_snapshot import Snapshot

LOG_LENGTH = 4096
"""Entries the change log keeps (a few hundred KB). A node further behind reads
everything. The bound also keeps the acquire script's ``HMGET`` of the changed records
under the 8,000 arguments Redis's Lua lets ``unpack`` spread."""

# Prepended to every script that writes: bump ``version`` (KEYS[v]) and log ``entry``
# in ``changes`` (KEYS[l]) as the entry for the new version.
_LOG = f"""
local function logged(v, l, entry)
  if redis.call('INCR', KEYS[v]) == 1 then
    local now = redis.call('TIME')
    redis.call('SET', KEYS[v], now[1] .. string.format('%06d', tonumber(now[2])))
    redis.call('DEL', KEYS[l])
  end
  redis.call('RPUSH', KEYS[l], entry)
  redis.call('LTRIM', KEYS[l], -{LOG_LENGTH}, -1)
end
"""

# KEYS: tickets, offers, clerks, sessions, version, changes
# ARGV: ticket id, clerk id, offered clerk JSON, session id, session JSON, offer entry
_CLAIM = _LOG + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
local raw = redis.call('HGET', KEYS[3], ARGV[2])
if not raw then return 0 end
local clerk = cjson.decode(raw)
if clerk.state ~= 'available' then return 0 end
if clerk.offer_id ~= nil and clerk.offer_id ~= cjson.null then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
logged(5, 6, 'x:' .. ARGV[1] .. '|' .. ARGV[2])
return 1
"""

# KEYS: tickets, offers, owners, version, changes
# ARGV: id, ticket JSON, owner, offer entry or ''
_ADD_TICKET = _LOG + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
logged(4, 5, 'o:' .. ARGV[1] .. '|' .. ARGV[3])
return 1
"""

# KEYS: tickets, offers, version, changes; ARGV: id, ticket JSON, offer entry or ''
_PUT_TICKET = _LOG + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
end
logged(3, 4, 't:' .. ARGV[1])
return 1
"""

# KEYS: tickets, offers, owners, version, changes; ARGV: id.
# Returns {ticket JSON, offer or false}, or nil when there was no such ticket.
_REMOVE_TICKET = _LOG + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return nil end
local offer = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local owner = cjson.decode(raw).owner
if redis.call('HGET', KEYS[3], owner) == ARGV[1] then redis.call('HDEL', KEYS[3], owner) end
logged(4, 5, 'o:' .. ARGV[1] .. '|' .. owner)
return {raw, offer}
"""

# KEYS: clerks, version, changes; ARGV: id, clerk JSON
_PUT_CLERK = _LOG + """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
logged(2, 3, 'c:' .. ARGV[1])
return 1
"""

# KEYS: paused, version, changes; ARGV: matter, '1' to pause or '' to resume
_SET_PAUSED = _LOG + """
if ARGV[2] == '1' then
  redis.call('SADD', KEYS[1], ARGV[1])
else
  redis.call('SREM', KEYS[1], ARGV[1])
end
logged(2, 3, 'p:' .. ARGV[1])
return 1
"""

# KEYS: tickets, offers, owners; ARGV: owner. Returns {id, ticket JSON, offer or false}.
_TICKET_OF = """
local id = redis.call('HGET', KEYS[3], ARGV[1])
if not id then return nil end
local raw = redis.call('HGET', KEYS[1], id)
if not raw then return nil end
return {id, raw, redis.call('HGET', KEYS[2], id)}
"""

Raw = bytes | str
"""A reply as redis-py types it; the store's client returns bytes."""


def _text(value: Raw) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    def __init__(self, redis: Redis, prefix: str = "xiaowu:", *,
                 lock_ttl: float = 5.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self._k_tickets = f"{prefix}tickets"
        self._k_offers = f"{prefix}offers"
        self._k_owners = f"{prefix}owners"
        self._k_clerks = f"{prefix}clerks"
        self._k_sessions = f"{prefix}sessions"
        self._k_paused = f"{prefix}paused"
        self._k_version = f"{prefix}version"
        self._k_changes = f"{prefix}changes"
        self._logged = [self._k_version, self._k_changes]
        self._ticket_keys = [self._k_tickets, self._k_offers, self._k_owners, *self._logged]
        self._change_keys = [*self._logged, self._k_tickets, self._k_offers, self._k_owners,
                             self._k_clerks, self._k_paused]
        self._lock = RedisQueueLock(redis, prefix, ttl=lock_ttl, listener=self,
                                    catch_up_keys=self._change_keys[1:])
        self._claim = redis.register_script(_CLAIM)
        self._add_ticket = redis.register_script(_ADD_TICKET)
        self._put_ticket = redis.register_script(_PUT_TICKET)
        self._remove_ticket = redis.register_script(_REMOVE_TICKET)
        self._put_clerk = redis.register_script(_PUT_CLERK)
        self._set_paused = redis.register_script(_SET_PAUSED)
        self._ticket_of = redis.register_script(_TICKET_OF)
        self._ticket_cache: dict[str, tuple[Raw, Raw | None, TicketRecord]] = {}
        self._raw_tickets: dict[Raw, tuple[Raw, Raw | None, TicketRecord]] = {}
        self._clerk_cache: dict[str, tuple[Raw, ClerkRecord]] = {}
        self._leased = False
        self._snapshot: Snapshot | None = None
        self._behind = False
        """The copy may miss writes logged after its version: catch up next lease."""
        self.full_reads = 0
        """Times this node read the whole state into its copy (tests, benchmarks)."""
        self.catch_ups = 0
        """Times it brought its copy up to date from the change log instead."""
        self._replay = RedisReplay(redis, prefix)

    @property
    def lock(self) -> RedisQueueLock:
        return self._lock

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()

    async def clear(self) -> None:
        """Delete every key under the prefix (tests; a deployment never calls this)."""
        keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}*")]
        if keys:
            await self.redis.delete(*keys)
        self._snapshot, self._behind = None, False

    # ---- the lease's copy of the state ---------------------------------------------

    def copy_version(self) -> int | None:
        return None if self._snapshot is None else self._snapshot.version

    def lease_started(self, version: int, changed: Any = NOT_ASKED) -> None:
        self._leased = True
        snapshot = self._snapshot
        if snapshot is None:
            return
        behind = self._behind or snapshot.version != version  # someone else wrote
        self._behind = False
        if not behind:
            return
        if changed is NOT_ASKED or changed is None:
            self._snapshot = None  # the log does not reach back that far: read it all
        else:  # what changed came with the lease: no round trip of its own
            self._apply_changes(snapshot, changed)

    def lease_ended(self, version: int | None) -> None:
        self._leased = False
        snapshot = self._snapshot
        if snapshot is None or self._behind:
            return
        if version is None or snapshot.version + snapshot.writes != version:
            # The lease lapsed or someone else wrote meanwhile. Every write since the
            # copy's version, this node's mirrored ones included, is in the log.
            self._behind = True
        else:
            snapshot.version, snapshot.writes = version, 0

    async def _read(self) -> Snapshot | None:
        """The copy to read from while leased (caught up or read once per stale lease),
        else None."""
        if not self._leased:
            return None
        if self._snapshot is None:
            self.full_reads += 1
            self._behind = False
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._k_tickets)
                pipe.hgetall(self._k_offers)
                pipe.hgetall(self._k_owners)
                pipe.hgetall(self._k_clerks)
                pipe.smembers(self._k_paused)
                pipe.get(self._k_version)
                tickets, offers, owners, clerks, paused, version = await pipe.execute()
            self._snapshot = Snapshot(
                tickets=self._decode_tickets(tickets, offers),
                owners={_text(k): _text(v) for k, v in owners.items()},
                clerks={_text(k): self._clerk(_text(k), v) for k, v in clerks.items()},
                paused={_text(m) for m in paused}, version=int(version or 0))
        return self._snapshot

    def _apply_changes(self, snapshot: Snapshot, found: list[Any]) -> None:
        """Bring the copy up to date with what ``changes_since`` returned for its version
        (the records the change log names since, as Redis holds them now)."""
        self.catch_ups += 1
        if len(found) == 1:
            snapshot.version, snapshot.writes = int(found[0]), 0
            return
        version, ids, raws, offers, owners, owned, clerk_ids, clerks, paused, members = found
        tickets: dict[str, TicketRecord | None] = {}
        for raw_id, raw, offer in zip(ids, raws, offers, strict=True):
            ticket_id = _text(raw_id)
            if raw is None:
                self._ticket_cache.pop(ticket_id, None)
                tickets[ticket_id] = None
            else:
                tickets[ticket_id] = self._ticket(ticket_id, raw, offer)
        snapshot.refresh(
            version=int(version), tickets=tickets,
            owners={_text(k): None if v is None else _text(v)
                    for k, v in zip(owners, owned, strict=True)},
            clerks={_text(k): None if raw is None else self._clerk(_text(k), raw)
                    for k, raw in zip(clerk_ids, clerks, strict=True)},
            paused={_text(m) for m in members} if paused else None)

    def _wrote(self, change: Callable[[Snapshot], None]) -> None:
        """Mirror one write (already in Redis and in the change log) in the copy."""
        snapshot = self._snapshot
        if snapshot is None or self._behind:
            return
        if not self._leased:
            self._behind = True  # other nodes may be writing too: catch up next lease
            return
        change(snapshot)
        snapshot.writes += 1

    # ---- tickets -------------------------------------------------------------------

    def _ticket(self, ticket_id: str, raw: Raw, offer: Raw | None) -> TicketRecord:
        cached = self._ticket_cache.get(ticket_id)
        if cached is not None and cached[0] == raw and cached[1] == offer:
            return cached[2]
        record = decode_ticket(raw, offer)
        self._ticket_cache[ticket_id] = (raw, offer, record)
        return record

    def _decode_tickets(self, tickets: Mapping[Raw, Raw],
                        offers: Mapping[Raw, Raw]) -> dict[str, TicketRecord]:
        records: dict[str, TicketRecord] = {}
        cache = self._raw_tickets
        for key, raw in tickets.items():
            offer = offers.get(key)
            cached = cache.get(key)
            if cached is not None and cached[0] == raw and cached[1] == offer:
                record = cached[2]
            else:
                record = decode_ticket(raw, offer)
                cache[key] = (raw, offer, record)
            records[record.ticket.id] = record
        if len(cache) > 2 * len(records) + 64:
            self._raw_tickets = {k: v for k, v in cache.items() if k in tickets}
        return records

    async def add_ticket(self, record: TicketRecord) -> None:
        added = await self._add_ticket(keys=self._ticket_keys, args=[
            record.ticket.id, encode_ticket(record), record.owner, encode_offer(record) or ""])
        if not added:
            raise KeyError(f"ticket {record.ticket.id} exists")
        self._wrote(lambda snapshot: snapshot.add_ticket(record))

    async def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        if (snapshot := await self._read()) is not None:
            return snapshot.tickets.get(ticket_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._k_tickets, ticket_id)
            pipe.hget(self._k_offers, ticket_id)
            raw, offer = await pipe.execute()
        return None if raw is None else self._ticket(ticket_id, raw, offer)

    async def put_ticket(self, record: TicketRecord) -> None:
        ticket_id = record.ticket.id
        await self._put_ticket(keys=[self._k_tickets, self._k_offers, *self._logged], args=[
            ticket_id, encode_ticket(record), encode_offer(record) or ""])
        self._wrote(lambda snapshot: snapshot.put_ticket(record))

    async def remove_ticket(self, ticket_id: str) -> TicketRecord | None:
        found = await self._remove_ticket(keys=self._ticket_keys, args=[ticket_id])
        self._ticket_cache.pop(ticket_id, None)
        if found is None:
            return None
        self._wrote(lambda snapshot: snapshot.remove_ticket(ticket_id))
        return decode_ticket(found[0], found[1])

    async def tickets(self) -> list[TicketRecord]:
        if (snapshot := await self._read()) is not None:
            return list(snapshot.tickets.values())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._k_tickets)
            pipe.hgetall(self._k_offers)
            raw_tickets, raw_offers = await pipe.execute()
        return list(self._decode_tickets(raw_tickets, raw_offers).values())

    async def ticket_of(self, owner: str) -> TicketRecord | None:
        if (snapshot := await self._read()) is not None:
            return snapshot.ticket_of(owner)
        found = await self._ticket_of(keys=self._ticket_keys[:3], args=[owner])
        return None if found is None else self._ticket(_text(found[0]), found[1], found[2])

    # ---- clerks --------------------------------------------------------------------

    def _clerk(self, clerk_id: str, raw: Raw) -> ClerkRecord:
        cached = self._clerk_cache.get(clerk_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        record = decode_clerk(raw)
        self._clerk_cache[clerk_id] = (raw, record)
        return record

    async def put_clerk(self, record: ClerkRecord) -> None:
        await self._put_clerk(keys=[self._k_clerks, *self._logged],
                              args=[record.id, encode_clerk(record)])
        self._wrote(lambda snapshot: snapshot.put_clerk(record))

    async def get_clerk(self, clerk_id: str) -> ClerkRecord | None:
        if (snapshot := await self._read()) is not None:
            return snapshot.clerks.get(clerk_id)
        raw = await self.redis.hget(self._k_clerks, clerk_id)
        return None if raw is None else self._clerk(clerk_id, raw)

    async def clerks(self) -> list[ClerkRecord]:
        if (snapshot := await self._read()) is not None:
            return list(snapshot.clerks.values())
        found: dict[Raw, Raw] = await self.redis.hgetall(self._k_clerks)
        return [self._clerk(_text(key), raw) for key, raw in found.items()]

    async def claim_offer(self, ticket_id: str, offered: ClerkRecord, session: Session) -> bool:
        claimed = await self._claim(
            keys=[self._k_tickets, self._k_offers, self._k_clerks, self._k_sessions,
                  *self._logged],
            args=[ticket_id, offered.id, encode_clerk(offered), session.session_id,
                  encode_session(session), offer_value(offered.id, session.session_id)])
        if not claimed:
            self._snapshot = None  # the copy proposed a claim Redis refused: it is stale
            return False
        self._wrote(lambda snapshot: snapshot.claimed(ticket_id, offered, session.session_id))
        return True

    # ---- sessions, their numbered events, paused matters --------------------------------

    async def put_session(self, session: Session) -> None:
        await self.redis.hset(self._k_sessions, session.session_id, encode_session(session))

    async def get_session(self, session_id: str) -> Session | None:
        raw = await self.redis.hget(self._k_sessions, session_id)
        return None if raw is None else decode_session(raw)

    async def remove_session(self, session_id: str) -> None:
        await self.redis.hdel(self._k_sessions, session_id)

    async def paused(self) -> frozenset[str]:
        if (snapshot := await self._read()) is not None:
            return frozenset(snapshot.paused)
        members: set[Raw] = await self.redis.smembers(self._k_paused)
        return frozenset(_text(m) for m in members)

    async def set_paused(self, matter: str, paused: bool) -> None:
        await self._set_paused(keys=[self._k_paused, *self._logged],
                               args=[matter, "1" if paused else ""])
        self._wrote(lambda snapshot: snapshot.set_paused(matter, paused))


    async def append_event(self, participant: str, event: str,
                           data: dict[str, Any]) -> Numbered:
        return await self._replay.append(participant, event, data)

    async def append_events(self, events: Sequence[tuple[str, str, dict[str, Any]]], *,
                            fresh: bool = False) -> list[Numbered]:
        return await self._replay.append_many(events, fresh=fresh)

    async def events_since(self, participant: str, last_seq: int) -> list[Numbered] | None:
        return await self._replay.since(participant, last_seq)

    async def reset_events(self, participant: str) -> None:
        await self._replay.reset(participant)

def connect(url: str, **options: Any) -> Redis:
    """A client for the store: bytes replies (JSON is decoded from bytes).

    No socket timeout: redis-py bounds each write with ``asyncio.wait_for`` when one is
    set, and on Python 3.11 ``wait_for`` drops a cancellation that arrives as the write
    completes, so a cancelled task (a timer at shutdown, a waiter given up) would run on.
    TCP keepalive and a periodic health check find a dead connection instead.
    """
    settings: dict[str, Any] = {"socket_timeout": None, "socket_keepalive": True,
                                "health_check_interval": 30}
    settings.update(options)
    return Redis.from_url(url, decode_responses=False, **settings)
