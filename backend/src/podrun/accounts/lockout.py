"""Failed sign-ins slow one account down, but only for the clients that failed (docs/auth.md, "Sign-in protection").

Every attempt at an account counts as a failure until the password proves right, so parallel guesses
can never slip past the count. Once an account has taken `failures_before_delay` failures, each further
one locks it for twice as long as the last (from `first_delay_s` up to `max_delay_s`), and a locked
account refuses, without checking the password, every client address that has failed at it since its
failures were last forgotten. A client that has not failed there gets its attempt, so a correct password
from the account's owner still signs in while someone else guesses. State is per normalised email (so
unknown emails behave exactly like known ones), in three Redis keys that expire after
`failure_window_s`; a Redis that loses its data forgets every lockout.
"""

from __future__ import annotations

from redis.asyncio import Redis

from podrun.core.errors import RateLimited
from podrun.redis_client import Keys
from podrun.settings import SignInSettings

# Refuse a client that failed while the account is locked; otherwise count the attempt and lock if due.
# KEYS: failures, clients, lock. ARGV: client, window_s, failures_before_delay, first_delay_ms, max_delay_ms.
_ATTEMPT = """
local locked_ms = redis.call('PTTL', KEYS[3])
if locked_ms > 0 and redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return locked_ms
end
local failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
local over = failures - tonumber(ARGV[3])
if over > 0 then
  local delay_ms = math.floor(math.min(tonumber(ARGV[4]) * 2 ^ (over - 1), tonumber(ARGV[5])))
  if delay_ms > locked_ms then
    redis.call('SET', KEYS[3], '1', 'PX', delay_ms)
  end
end
return 0
"""

# The attempt was not a failure after all (right password, or not checked): take back its count.
# KEYS: failures, clients. ARGV: client.
_FORGIVE = """
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
if failures <= 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('DECR', KEYS[1])
end
redis.call('SREM', KEYS[2], ARGV[1])
return 0
"""


class Lockout:
    """The failure count and lock of accounts, by normalised email."""

    def __init__(self, redis: Redis, keys: Keys, settings: SignInSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._attempt = redis.register_script(_ATTEMPT)
        self._forgive = redis.register_script(_FORGIVE)

    def _keys(self, email: str) -> list[str]:
        return [self.keys.sign_in(part, email) for part in ("failures", "clients", "lock")]

    async def attempt(self, email: str, client: str) -> None:
        """Count an attempt by `client` as a failure; RATE_LIMITED if the account is locked for this client."""
        settings = self.settings
        locked_ms = int(
            await self._attempt(
                keys=self._keys(email),
                args=[
                    client,
                    settings.failure_window_s,
                    settings.failures_before_delay,
                    int(settings.first_delay_s * 1000),
                    int(settings.max_delay_s * 1000),
                ],
            )
        )
        if locked_ms > 0:
            raise RateLimited(
                f"too many failed sign-ins at this account from here; try again in {locked_ms // 1000 + 1} s",
                retry_after_ms=locked_ms,
            )

    async def forgive(self, email: str, client: str) -> None:
        """The attempt counted by `attempt` was no failure."""
        failures, clients, _ = self._keys(email)
        await self._forgive(keys=[failures, clients], args=[client])

    async def unlock(self, email: str) -> None:
        """Forget every failure and lock of the account."""
        await self.redis.delete(*self._keys(email))
