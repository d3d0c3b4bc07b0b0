"""Fixed-window rate limits in Redis: shared by every API process, gone when the window ends."""

from __future__ import annotations

import ipaddress

from redis.asyncio import Redis

from podrun.core.errors import RateLimited


async def hit(redis: Redis, key: str, limit: int, window_s: int, what: str) -> None:
    """Count one attempt at `key`; RATE_LIMITED (with when to retry) once `limit` is passed in the window."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_s, nx=True)
        pipe.pttl(key)
        count, _, ttl_ms = await pipe.execute()
    if count > limit:
        raise RateLimited(
            f"too many {what}; try again in {max(ttl_ms, 0) // 1000 + 1} s", retry_after_ms=max(ttl_ms, 1)
        )


def client_key(address: str | None) -> str:
    """The subject of per-client limits: an IPv4 address, or the /64 network of an IPv6 one (one host's share)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
