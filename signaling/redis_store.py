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

Reads of whole hashes decode only the entries whose raw JSON changed since this node
last read them, so a dispatch over a thousand waiting tickets costs one round trip and
a few decodes, and a clerk's dispatcher snapshot (cached on the record) survives reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from signaling.redis_lock import RedisQueueLock
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

# KEYS: tickets, offers, clerks, sessions
# ARGV: ticket id, clerk id, offered clerk JSON, session id, session JSON, offer entry
_CLAIM = """
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
return 1
"""

# KEYS: tickets, offers, owners; ARGV: id, ticket JSON, owner, offer entry or ''
_ADD_TICKET = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
return 1
"""

# KEYS: tickets, offers, owners; ARGV: id. Returns {ticket JSON, offer or false} or nil.
_REMOVE_TICKET = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return nil end
local offer = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local owner = cjson.decode(raw).owner
if redis.call('HGET', KEYS[3], owner) == ARGV[1] then redis.call('HDEL', KEYS[3], owner) end
return {raw, offer}
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
        self._ticket_keys = [self._k_tickets, self._k_offers, self._k_owners]
        self._lock = RedisQueueLock(redis, prefix, ttl=lock_ttl)
        self._claim = redis.register_script(_CLAIM)
        self._add_ticket = redis.register_script(_ADD_TICKET)
        self._remove_ticket = redis.register_script(_REMOVE_TICKET)
        self._ticket_of = redis.register_script(_TICKET_OF)
        self._ticket_cache: dict[str, tuple[Raw, Raw | None, TicketRecord]] = {}
        self._clerk_cache: dict[str, tuple[Raw, ClerkRecord]] = {}

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

    # ---- tickets -------------------------------------------------------------------

    def _ticket(self, ticket_id: str, raw: Raw, offer: Raw | None) -> TicketRecord:
        cached = self._ticket_cache.get(ticket_id)
        if cached is not None and cached[0] == raw and cached[1] == offer:
            return cached[2]
        record = decode_ticket(raw, offer)
        self._ticket_cache[ticket_id] = (raw, offer, record)
        return record

    async def add_ticket(self, record: TicketRecord) -> None:
        added = await self._add_ticket(keys=self._ticket_keys, args=[
            record.ticket.id, encode_ticket(record), record.owner, encode_offer(record) or ""])
        if not added:
            raise KeyError(f"ticket {record.ticket.id} exists")

    async def get_ticket(self, ticket_id: str) -> TicketRecord | None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._k_tickets, ticket_id)
            pipe.hget(self._k_offers, ticket_id)
            raw, offer = await pipe.execute()
        return None if raw is None else self._ticket(ticket_id, raw, offer)

    async def put_ticket(self, record: TicketRecord) -> None:
        ticket_id = record.ticket.id
        offer = encode_offer(record)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._k_tickets, ticket_id, encode_ticket(record))
            if offer is None:
                pipe.hdel(self._k_offers, ticket_id)
            else:
                pipe.hset(self._k_offers, ticket_id, offer)
            await pipe.execute()

    async def remove_ticket(self, ticket_id: str) -> TicketRecord | None:
        found = await self._remove_ticket(keys=self._ticket_keys, args=[ticket_id])
        self._ticket_cache.pop(ticket_id, None)
        return None if found is None else decode_ticket(found[0], found[1])

    async def tickets(self) -> list[TicketRecord]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._k_tickets)
            pipe.hgetall(self._k_offers)
            raw_tickets, raw_offers = await pipe.execute()
        offers: Mapping[Raw, Raw] = raw_offers
        records = [self._ticket(_text(key), raw, offers.get(key))
                   for key, raw in raw_tickets.items()]
        if len(self._ticket_cache) > 2 * len(records) + 64:
            live = {r.ticket.id for r in records}
            self._ticket_cache = {k: v for k, v in self._ticket_cache.items() if k in live}
        return records

    async def ticket_of(self, owner: str) -> TicketRecord | None:
        found = await self._ticket_of(keys=self._ticket_keys, args=[owner])
        if found is None:
            return None
        return self._ticket(_text(found[0]), found[1], found[2])

    # ---- clerks --------------------------------------------------------------------

    def _clerk(self, clerk_id: str, raw: Raw) -> ClerkRecord:
        cached = self._clerk_cache.get(clerk_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        record = decode_clerk(raw)
        self._clerk_cache[clerk_id] = (raw, record)
        return record

    async def put_clerk(self, record: ClerkRecord) -> None:
        await self.redis.hset(self._k_clerks, record.id, encode_clerk(record))

    async def get_clerk(self, clerk_id: str) -> ClerkRecord | None:
        raw = await self.redis.hget(self._k_clerks, clerk_id)
        return None if raw is None else self._clerk(clerk_id, raw)

    async def clerks(self) -> list[ClerkRecord]:
        found: dict[Raw, Raw] = await self.redis.hgetall(self._k_clerks)
        return [self._clerk(_text(key), raw) for key, raw in found.items()]

    async def claim_offer(self, ticket_id: str, offered: ClerkRecord, session: Session) -> bool:
        claimed = await self._claim(
            keys=[self._k_tickets, self._k_offers, self._k_clerks, self._k_sessions],
            args=[ticket_id, offered.id, encode_clerk(offered), session.session_id,
                  encode_session(session), offer_value(offered.id, session.session_id)])
        return bool(claimed)

    # ---- sessions and paused matters ---------------------------------------------------

    async def put_session(self, session: Session) -> None:
        await self.redis.hset(self._k_sessions, session.session_id, encode_session(session))

    async def get_session(self, session_id: str) -> Session | None:
        raw = await self.redis.hget(self._k_sessions, session_id)
        return None if raw is None else decode_session(raw)

    async def remove_session(self, session_id: str) -> None:
        await self.redis.hdel(self._k_sessions, session_id)

    async def paused(self) -> frozenset[str]:
        members: set[Raw] = await self.redis.smembers(self._k_paused)
        return frozenset(_text(m) for m in members)

    async def set_paused(self, matter: str, paused: bool) -> None:
        if paused:
            await self.redis.sadd(self._k_paused, matter)
        else:
            await self.redis.srem(self._k_paused, matter)


def connect(url: str, **options: Any) -> Redis:
    """A client for the store: bytes replies (JSON is decoded from bytes)."""
    return Redis.from_url(url, decode_responses=False, **options)
