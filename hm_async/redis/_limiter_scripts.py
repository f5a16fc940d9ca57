"""The two Lua scripts behind :class:`hm_async.redis.RedisLimiter` (each runs atomically).

Time is Redis's own clock (``TIME``): one clock for every worker, so no two processes ever
compare theirs. Answers carry *relative* times (seconds from now), which each worker maps
onto its own monotonic clock.

Keys of one brand: ``<brand>:leases`` (a list of ``"<end> <k>"`` in start order),
``<brand>:state`` (a hash: ``last`` start handed out, ``paused`` until, and the adaptive
estimate ``rate``, ``gen``, ``slow``, ``recover``, ``step``, ``nocut``), plus one
``workers`` sorted set (worker id -> last lease time) shared by all brands.

LEASE -- a batch of ``k`` grants that may be used only in ``[start, end)``, ``end = start +
d`` (the worker picks ``d`` per lease: short when it has requests queued, which take the
grants at once; longer when the limit does not bind, to save round trips). Starts are
handed out in arrival order (``start >= last``), so waiting workers are served first
come, first served across processes: a lease that does not fit now is *reserved* at the
earliest start where it fits (the worker sleeps until then), never refused and retried.
A grant not used by ``end`` is gone: the rule below already counted it.

The window rule, with ``n = max(1, floor(R))`` grants per ``w = (1 if R >= 1 else 1/R)``
seconds and ``span = w + g`` (``g`` = 20 ms for a request observed a little later than it
was sent): a new lease starting at ``s`` is admitted only if it and the leases with
``end > s - span`` hold at most ``n`` grants. Proof that no observed window ``[x, x + w)``
holds more than ``n``: widen it to ``[x - g, x + w)`` to cover observation lag; its
grants come from leases whose ``[start, end)`` meets it. Let ``m`` be the one of them
admitted last (latest start): ``s_m < x + w``, so ``s_m - span < x - g``, so every lease
meeting the window (``end > x - g``) was counted when ``m`` was admitted: at most ``n``.

Pacing (GCRA): a lease of ``k`` grants also pushes the earliest start of the next one
``k * (1 + d + g) / R`` seconds on (state ``tat``), so grants flow evenly at about the
rate the window rule allows instead of ``n`` at once and then nothing for a second; the
window rule above is what guarantees the bound.

CUT -- a 429: pause the brand for everyone until ``now + Retry-After``; for an adaptive
brand, cut the shared rate like the in-process AIMD (once per generation).
"""

from __future__ import annotations

__all__ = ["CUT", "LEASE"]

LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local want = tonumber(ARGV[3])
local d = tonumber(ARGV[4])
local g = tonumber(ARGV[5])
local succ = tonumber(ARGV[6])
redis.call('ZADD', KEYS[3], now, ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 5)
local workers = redis.call('ZCARD', KEYS[3])
local st = redis.call('HMGET', KEYS[2], 'rate', 'gen', 'slow', 'recover', 'step', 'paused', 'last',
                     'tat')
local gen = tonumber(st[2]) or 0
local paused = tonumber(st[6]) or 0
local last = tonumber(st[7]) or 0
local rate = 0
if mode == 'a' then
  rate = tonumber(st[1]) or tonumber(ARGV[8])
  if succ > 0 then
    local recover = tonumber(st[4]) or 0
    if st[3] ~= '0' or rate < recover then
      rate = rate + tonumber(ARGV[11]) * succ
    else
      rate = rate + (tonumber(st[5]) or 0) * succ / rate
    end
    local max = tonumber(ARGV[10])
    if max > 0 and rate > max then rate = max end
    redis.call('HSET', KEYS[2], 'rate', string.format('%.6f', rate))
  end
elseif mode == 'f' then
  rate = tonumber(ARGV[2])
end
local start = math.max(now, paused, last)
local k = want
local fill = 0
if mode ~= 'u' then
  start = math.max(start, tonumber(st[8]) or 0)
  local n = math.max(1, math.floor(rate))
  local w = 1
  if rate < 1 then w = 1 / rate end
  local span = w + g
  local entries = redis.call('LRANGE', KEYS[1], 0, -1)
  local ends, ks, drop = {}, {}, 0
  for i, e in ipairs(entries) do
    local sp = string.find(e, ' ')
    ends[i] = tonumber(string.sub(e, 1, sp - 1))
    ks[i] = tonumber(string.sub(e, sp + 1))
    if ends[i] <= now - math.max(span, 2.5) then drop = i end
  end
  if drop > 0 then redis.call('LTRIM', KEYS[1], drop, -1) end
  -- the leases that can share a window with one starting at `start`: ends > start - span
  -- (ends are not sorted when leases differ in length: sum them all, drop by earliest end)
  local live = {}
  local total = 0
  for i = 1, #ends do
    if ends[i] > start - span then total = total + ks[i]; live[#live + 1] = i end
  end
  if k > n then k = n end
  if n - total < 1 then
    table.sort(live, function(a, b) return ends[a] < ends[b] end)
    local j = 1
    while n - total < 1 do
      -- full: the earliest start is when the lease that ends first leaves the window
      start = math.max(start, ends[live[j]] + span)
      total = total - ks[live[j]]
      j = j + 1
    end
  end
  if k > n - total then k = n - total end
  fill = (total + k) / n
  -- pace: the next lease starts no sooner than this one's share of the rate later
  redis.call('HSET', KEYS[2], 'tat', string.format('%.6f', start + k * (1 + d + g) / rate))
  redis.call('RPUSH', KEYS[1], string.format('%.6f %d', start + d, k))
  redis.call('PEXPIRE', KEYS[1], math.ceil((start + d - now + span + 3) * 1000))
end
redis.call('HSET', KEYS[2], 'last', string.format('%.6f', start))
redis.call('PEXPIRE', KEYS[2], 3600000)
return {string.format('%.6f', start - now), k, gen, workers, string.format('%.6f', rate),
        string.format('%.6f', math.max(0, paused - now)), string.format('%.4f', fill)}
"""

CUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local st = redis.call('HMGET', KEYS[1], 'rate', 'gen', 'slow', 'recover', 'step', 'paused', 'nocut')
local paused = tonumber(st[6]) or 0
local until_ = math.max(paused, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'paused', string.format('%.6f', until_))
redis.call('PEXPIRE', KEYS[1], 3600000)
if ARGV[3] ~= 'a' then return 0 end
local gen = tonumber(st[2]) or 0
local asked = tonumber(ARGV[2])
if asked >= 0 then
  if asked ~= gen then return 0 end
elseif now < (tonumber(st[7]) or 0) then
  return 0
end
local rate = tonumber(st[1]) or tonumber(ARGV[4])
local decrease = tonumber(ARGV[7])
local new = rate * decrease
local max = tonumber(ARGV[6])
if max > 0 and new > max then new = max end
new = math.max(tonumber(ARGV[5]), new)
local recover = tonumber(st[4]) or 0
if rate < recover then
  recover = rate * decrease
elseif rate * decrease > recover then
  recover = rate * decrease
end
redis.call('HSET', KEYS[1], 'rate', string.format('%.6f', new), 'slow', '0',
           'recover', string.format('%.6f', recover),
           'step', string.format('%.6f', new * tonumber(ARGV[8])), 'gen', gen + 1,
           'nocut', string.format('%.6f', until_ + tonumber(ARGV[9])))
return 1
"""
