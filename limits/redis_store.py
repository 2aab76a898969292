"""The counters in Redis (REDIS_URL): the only module that talks to Redis for limits.

Per lineage, under one hash tag (so a Redis Cluster keeps them on one node):
  recent   ZSET id -> admitted_at        requests of the rolling minute (rpm)
  tokens   HASH id -> tokens             their tokens (tpm): reserved, then as recorded
  live     ZSET id -> expires_at         in flight (max_parallel); expired = a dead worker's
  resv     HASH id -> "window tokens usd" what in-flight requests reserve in their window
  spend:W  HASH tokens, usd              what window W spent, as recorded
USD are integers of 1e-10 USD (exact up to about $900,000 a window: Lua numbers are
doubles). One script prunes, counts, decides and reserves, alone, so admission is atomic
across every worker and instance; refusing, it reserves nothing and returns what it
counted, from which the Python side words the refusal.
"""

from __future__ import annotations

import logging
import math
import time
from decimal import Decimal

import redis
from django.conf import settings

from limits import windows
from limits.exceptions import CountersUnavailable, RateLimited

logger = logging.getLogger(__name__)

USD_UNIT = Decimal("1e-10")

_ADMIT = """
local now, since, expires = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local window, want_tokens, want_usd = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local rpm, tpm, parallel = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local budget_tokens, budget_usd, ttl = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local spend_ttl = tonumber(ARGV[13])
local recent, tokens, live, resv, spend, seq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', recent, '-inf', since)) do
  redis.call('HDEL', tokens, id)
end
redis.call('ZREMRANGEBYSCORE', recent, '-inf', since)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', live, '-inf', now)) do
  redis.call('HDEL', resv, id)
end
redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
local count = redis.call('ZCARD', recent)
local oldest = redis.call('ZRANGE', recent, 0, 0, 'WITHSCORES')[2] or tostring(now)
local recent_tokens = 0
for _, t in ipairs(redis.call('HVALS', tokens)) do recent_tokens = recent_tokens + tonumber(t) end
local in_flight = redis.call('ZCARD', live)
local reserved_tokens, reserved_usd = 0, 0
for _, r in ipairs(redis.call('HVALS', resv)) do
  local w, t, u = string.match(r, '^(%S+) (%S+) (%S+)$')
  if w == window then
    reserved_tokens = reserved_tokens + tonumber(t)
    reserved_usd = reserved_usd + tonumber(u)
  end
end
local spent = redis.call('HMGET', spend, 'tokens', 'usd')
local spent_tokens, spent_usd = tonumber(spent[1] or 0), tonumber(spent[2] or 0)
local state = {count, oldest, recent_tokens, in_flight, reserved_tokens, reserved_usd,
               spent_tokens, spent_usd}
local refused = (rpm >= 0 and count >= rpm) or (tpm >= 0 and recent_tokens >= tpm)
  or (parallel >= 0 and in_flight >= parallel)
  or (budget_tokens >= 0 and want_tokens > 0
      and want_tokens > budget_tokens - spent_tokens - reserved_tokens)
  or (budget_usd >= 0 and want_usd >= 0
      and want_usd > budget_usd - spent_usd - reserved_usd)
if refused then return {0, state} end
local id = redis.call('INCR', seq)
redis.call('ZADD', recent, now, id)
redis.call('HSET', tokens, id, want_tokens)
redis.call('ZADD', live, expires, id)
redis.call('HSET', resv, id, window .. ' ' .. want_tokens .. ' ' .. math.max(want_usd, 0))
for _, k in ipairs({recent, tokens, live, resv, seq}) do redis.call('EXPIRE', k, ttl) end
if redis.call('EXISTS', spend) == 0 then
  redis.call('HSET', spend, 'tokens', 0, 'usd', 0)
  if spend_ttl > 0 then redis.call('EXPIRE', spend, spend_ttl) end
end
return {id, state}
"""

_SETTLE = """
local recent, tokens, live, resv, spend = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, used_tokens, used_usd, budget = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('ZSCORE', recent, id) then redis.call('HSET', tokens, id, used_tokens) end
redis.call('ZREM', live, id)
redis.call('HDEL', resv, id)
if budget == '1' and redis.call('EXISTS', spend) == 1 then
  redis.call('HINCRBY', spend, 'tokens', used_tokens)
  redis.call('HINCRBY', spend, 'usd', used_usd)
end
return 1
"""

_RESPEND = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'usd', ARGV[1]) end
return 1
"""

_client: redis.Redis | None = None
_scripts: dict = {}


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        _scripts["admit"] = _client.register_script(_ADMIT)
        _scripts["settle"] = _client.register_script(_SETTLE)
        _scripts["respend"] = _client.register_script(_RESPEND)
    return _client


def _keys(limits_id, window_start) -> list[str]:
    base = f"gateway:limits:{{{limits_id}}}"
    stamp = int(window_start.timestamp())
    return [f"{base}:{name}" for name in ("recent", "tokens", "live", "resv")] + [
        f"{base}:spend:{stamp}",
        f"{base}:seq",
    ]


def _units(usd: Decimal | None) -> int:
    return -1 if usd is None else math.ceil(usd / USD_UNIT)


def _usd(units) -> Decimal:
    return Decimal(int(float(units))) * USD_UNIT


def _limit(value) -> int:
    return -1 if value is None else int(value)


def ping() -> bool:
    """Whether Redis answers a PING now."""
    try:
        return bool(_redis().ping())
    except redis.RedisError:
        return False


def admit(*, policy, demand, hold_seconds: float):
    from limits.counters import Ticket, check_budget, check_rates

    now = time.time()
    spend_ttl = (
        0 if demand.resets_at is None else math.ceil(demand.resets_at.timestamp() - now) + 7 * 86400
    )
    try:
        allowed, state = _admit(policy, demand, hold_seconds, now, spend_ttl)
    except redis.RedisError:
        # Budgets never fail open, and rate limits fail closed with them: one answer for
        # "the counters are away", the same as when the database is.
        logger.warning("limits: Redis did not answer; request refused (fail closed)")
        raise CountersUnavailable(
            "The gateway cannot check this key's limits right now", retry_after=1
        ) from None
    if allowed:
        return Ticket(reservation_id=int(allowed), policy=policy, demand=demand)
    count, oldest, recent_tokens, in_flight, r_tokens, r_usd, s_tokens, s_usd = state
    counts = {
        "recent": int(count),
        "oldest": float(oldest),
        "recent_tokens": int(float(recent_tokens)),
        "in_flight": int(in_flight),
        "reserved_tokens": int(float(r_tokens)),
        "reserved_usd": _usd(r_usd),
    }
    check_rates(policy, counts, now)
    check_budget(policy, demand, counts, (int(float(s_tokens)), _usd(s_usd)), now)
    raise RateLimited("Limit reached for this key", retry_after=1)  # rounding at the edge


def _admit(policy, demand, hold_seconds, now, spend_ttl):
    _redis()
    return _scripts["admit"](
        keys=_keys(policy.id, demand.window_start),
        args=[
            repr(now),
            repr(now - windows.ROLLING_SECONDS),
            repr(now + hold_seconds),
            str(int(demand.window_start.timestamp())),
            demand.tokens,
            _units(demand.usd),
            _limit(policy.rpm_limit),
            _limit(policy.tpm_limit),
            _limit(policy.max_parallel),
            _limit(policy.budget_tokens),
            _units(policy.budget_usd),
            math.ceil(hold_seconds + windows.ROLLING_SECONDS + 60),
            spend_ttl,
        ],
    )


def settle(*, ticket, tokens: int, usd: Decimal | None) -> None:
    policy = ticket.policy
    has_budget = policy.budget_tokens is not None or policy.budget_usd is not None
    try:
        _redis()
        _scripts["settle"](
            keys=_keys(policy.id, ticket.demand.window_start)[:5],
            args=[
                ticket.reservation_id,
                int(tokens),
                max(0, _units(usd)),
                "1" if has_budget else "0",
            ],
        )
    except redis.RedisError:
        # Its place comes back when the reservation expires (PROXY_MAX_STREAM_SECONDS).
        logger.warning("limits: Redis did not answer; a reservation was left to expire")


def respend(*, ticket, usd_before: Decimal | None, usd_after: Decimal | None) -> None:
    """Change a settled request's spend from usd_before to usd_after (as settle counted it)."""
    policy = ticket.policy
    delta = max(0, _units(usd_after)) - max(0, _units(usd_before))
    if policy.budget_usd is None or delta == 0:
        return
    try:
        _redis()
        _scripts["respend"](keys=_keys(policy.id, ticket.demand.window_start)[4:5], args=[delta])
    except redis.RedisError:
        logger.warning("limits: Redis did not answer; a request's spend kept its first price")


def window_totals(*, windows_of: dict) -> dict:
    client = _redis()
    totals = {}
    now = time.time()
    for limits_id, start in windows_of.items():
        recent, tokens, live, resv, spend, _ = _keys(limits_id, start)
        spent = client.hmget(spend, "tokens", "usd")
        alive = {m.decode() for m in client.zrangebyscore(live, now, "+inf")}
        r_tokens, r_usd = 0, Decimal(0)
        for member, value in client.hgetall(resv).items():
            window, t, u = value.decode().split(" ")
            if member.decode() in alive and window == str(int(start.timestamp())):
                r_tokens += int(float(t))
                r_usd += _usd(u)
        totals[(limits_id, start)] = (
            int(spent[0] or 0),
            _usd(spent[1] or 0),
            r_tokens,
            r_usd,
        )
    return totals
