"""The Lua that reads the queue store's change log: what was written since a version.

A Lua function for the lock's acquire script, which returns the changes with the lease:
a node whose copy of the store is behind (another node wrote since its last lease) is
brought up to date without a round trip of its own. Layout and log entries are described
in :mod:`signaling.redis_store`.
"""

from __future__ import annotations

CHANGES_FN = """
local function changes_since(k, since)
  -- k: version, changes, tickets, offers, owners, clerks, paused (key names)
  -- false when the log does not reach back to ``since``; {version} when nothing
  -- changed; else {version, ticket ids, their tickets, their offers, owners, their
  -- ticket ids, clerk ids, their clerks, 1 if a matter was paused or resumed, the paused
  -- matters}, a missing record as nil.
  local v = tonumber(redis.call('GET', k[1]) or '0')
  local n = v - since
  if n == 0 then return {v} end
  if n < 0 or n > redis.call('LLEN', k[2]) then return false end
  local tickets, owners, clerks, seen, paused = {}, {}, {}, {}, 0
  local function note(list, kind, id)
    if not seen[kind .. id] then
      seen[kind .. id] = true
      list[#list + 1] = id
    end
  end
  for _, entry in ipairs(redis.call('LRANGE', k[2], -n, -1)) do
    local kind, rest = string.sub(entry, 1, 1), string.sub(entry, 3)
    if kind == 'p' then
      paused = 1
    elseif kind == 'c' then
      note(clerks, 'c', rest)
    elseif kind == 't' then
      note(tickets, 't', rest)
    else
      local bar = string.find(rest, '|', 1, true)
      note(tickets, 't', string.sub(rest, 1, bar - 1))
      if kind == 'x' then
        note(clerks, 'c', string.sub(rest, bar + 1))
      else
        note(owners, 'o', string.sub(rest, bar + 1))
      end
    end
  end
  local function get(key, fields)
    if #fields == 0 then return {} end
    return redis.call('HMGET', key, unpack(fields))
  end
  local members = {}
  if paused == 1 then members = redis.call('SMEMBERS', k[7]) end
  return {v, tickets, get(k[3], tickets), get(k[4], tickets), owners,
          get(k[5], owners), clerks, get(k[6], clerks), paused, members}
end
"""
