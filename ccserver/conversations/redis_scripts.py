"""The Lua scripts behind `RedisStore`: each multi-key write (and each read that needs
more than one key) is one script, so it is atomic and costs one round trip.

The scripts are constant text. Client-chosen values (conversation and response ids,
fingerprints, bodies) reach them only as KEYS and ARGV, never inside the Lua source. Keys
the scripts derive themselves (a conversation's old fingerprint entry, its responses) are
built from the prefix passed in ARGV[1].

Scores go to Redis as the strings Python wrote (``repr`` of a float: exact), never through
a Lua number, which would print them with 14 digits.

Key layout under the prefix ``p`` (see `RedisStore`):

    p..'c:'..id     hash: v = the conversation as JSON, fp = its fingerprint (absent when
                    None), op = the token of the last add_turn applied (retries are no-ops)
    p..'m:'..id     list: its messages, each JSON [role, parts, created_at]
    p..'cr:'..id    set: ids of its stored responses
    p..'r:'..rid    hash: c = conversation id, at = created_at, v = the response body
    p..'created'    sorted set: id by created_at (page)
    p..'updated'    sorted set: id by updated_at (expired)
    p..'f:'..fp     sorted set: id by updated_at, for one fingerprint (find)
    p..'schema'     string: the layout's version
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["ADD_TURN", "DELETE", "EXPIRED", "FIND", "PAGE", "PUT", "PUT_RESPONSE", "SCHEMA",
           "Script"]


class Script:
    """One Lua script, run by its SHA1; sent whole once when Redis does not know it (its
    script cache is empty after a restart), which also caches it again."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run(self, r: Redis, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        try:
            return await r.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await r.eval(self.source, len(keys), *keys, *args)


# The bodies (v) of the conversations with these ids, in order; false for one that is gone.
_LOAD = """
local function load(p, ids)
  local out = {}
  for i, id in ipairs(ids) do out[i] = redis.call('HGET', p .. 'c:' .. id, 'v') end
  return out
end
"""

# KEYS: c:id, created, updated. ARGV: p, id, v, created_at, updated_at, has_fp, fp.
_UPSERT = """
local function upsert()
  local p, id, fp = ARGV[1], ARGV[2], ARGV[7]
  local old = redis.call('HGET', KEYS[1], 'fp')
  if old and (ARGV[6] == '0' or old ~= fp) then redis.call('ZREM', p .. 'f:' .. old, id) end
  if ARGV[6] == '1' then
    redis.call('HSET', KEYS[1], 'v', ARGV[3], 'fp', fp)
    redis.call('ZADD', p .. 'f:' .. fp, ARGV[5], id)
  else
    redis.call('HSET', KEYS[1], 'v', ARGV[3])
    redis.call('HDEL', KEYS[1], 'fp')
  end
  redis.call('ZADD', KEYS[2], ARGV[4], id)
  redis.call('ZADD', KEYS[3], ARGV[5], id)
end
"""

PUT = Script(_UPSERT + "upsert()\nreturn 1\n")

# KEYS: c:id, created, updated, m:id. ARGV: as upsert, then the call's token, then the
# messages. The token makes a retried call (the client retries once on a lost connection
# or a timeout, which may come after Redis applied it) append nothing twice.
ADD_TURN = Script(_UPSERT + """
if redis.call('HGET', KEYS[1], 'op') == ARGV[8] then return 0 end
upsert()
for first = 9, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[4], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'op', ARGV[8])
return 1
""")

# KEYS: c:id, created, updated, m:id, cr:id. ARGV: p, id. Returns 1 if the conversation
# existed. Its messages and responses go whether it did or not, as in SQLite.
DELETE = Script("""
local p, id = ARGV[1], ARGV[2]
local fp = redis.call('HGET', KEYS[1], 'fp')
if fp then redis.call('ZREM', p .. 'f:' .. fp, id) end
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('DEL', KEYS[4])
for _, rid in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local rk = p .. 'r:' .. rid
  if redis.call('HGET', rk, 'c') == id then redis.call('DEL', rk) end
end
redis.call('DEL', KEYS[5])
return existed
""")

# KEYS: f:fp. ARGV: p. The newest by updated_at of the conversations with that history.
FIND = Script(_LOAD + """
local ids = redis.call('ZREVRANGE', KEYS[1], 0, 0)
if #ids == 0 then return false end
return load(ARGV[1], ids)[1]
""")

# KEYS: created. ARGV: p, limit, has_after, after. Newest first by (created_at, id), one
# more than the limit (whether there are more); after an id that is not there: nothing.
PAGE = Script(_LOAD + """
local start = 0
if ARGV[3] == '1' then
  local rank = redis.call('ZREVRANK', KEYS[1], ARGV[4])
  if not rank then return {} end
  start = rank + 1
end
return load(ARGV[1], redis.call('ZREVRANGE', KEYS[1], start, start + tonumber(ARGV[2])))
""")

# KEYS: updated. ARGV: p, the exclusive bound '(' .. before.
EXPIRED = Script(_LOAD + """
return load(ARGV[1], redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2]))
""")

# KEYS: r:rid, cr:cid. ARGV: p, rid, cid, created_at, body. A response id stored again
# for another conversation leaves the first one's set.
PUT_RESPONSE = Script("""
local old = redis.call('HGET', KEYS[1], 'c')
if old and old ~= ARGV[3] then redis.call('SREM', ARGV[1] .. 'cr:' .. old, ARGV[2]) end
redis.call('HSET', KEYS[1], 'c', ARGV[3], 'at', ARGV[4], 'v', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
""")

# KEYS: schema. ARGV: this layout's version. Records it if there is none; returns the one
# in Redis.
SCHEMA = Script("""
redis.call('SETNX', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])
""")
