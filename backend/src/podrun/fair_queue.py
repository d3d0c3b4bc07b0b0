"""Which queued run starts next: a fair share of the running slots between users, decided in Redis.

Each user has a queue of their runs (oldest first); a worker with room claims the next run with one
Lua script, so any number of workers sharing the Redis never take the same run nor both skip a user.
The script looks at the oldest run of every user with runs waiting, keeps those that fit the room
the worker has left (memory), and takes the one whose user has the fewest runs in progress on all
workers; between users with as many, the run waiting longest. A user holding many slots therefore
never delays another user's run by more than the time it takes one slot to free up.

The claimed run's arq job, enqueued held (due in the far future), is made due now in the same script;
the worker that claimed it then starts it through arq (workers never read arq's queue themselves, so
no other worker takes it). Jobs that take over a run from a dead worker (executions/orphans.py) wait
in a list of hand-overs, claimed before any queued run: their run is already in progress. A run leaves its
user's in-progress set when it ends (`release`); an entry whose release was lost lapses. PostgreSQL
stays the record: after Redis lost its data the watchdog's sweep enqueues every QUEUED run again
(executions/orphans.py), and only runs already in progress go uncounted until they end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from arq.constants import job_key_prefix, result_key_prefix
from arq.utils import to_unix_ms
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from podrun.redis_client import Keys

# arq's score for a held job: never due until a claim makes it so.
HELD_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
# Longer than any run stays in progress; only an entry whose release was lost lasts this long.
RUNNING_LAPSE_MS = 3600 * 1000
# "No memory limit": a worker running nothing takes any run, so a run larger than a budget still starts.
ANY_SIZE = -1

# arq's enqueue_job (the job written unless it or its result exists: a second enqueue of an id is ignored), the
# run's place in its user's queue (changed by nothing if already there) and the wake, atomic and in one round trip.
_ADD = """
local job_key, result_key, arq_queue = KEYS[1], KEYS[2], KEYS[3]
local need_key, queued_key, users_key = KEYS[4], KEYS[5], KEYS[6]
local job_id, job, expires_ms, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local need, queued_at, user, wake = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if redis.call('EXISTS', job_key, result_key) == 0 then
  redis.call('SET', job_key, job, 'PX', expires_ms)
  redis.call('ZADD', arq_queue, score, job_id)
end
redis.call('HSET', need_key, job_id, need)
redis.call('ZADD', queued_key, 'NX', queued_at, job_id)
redis.call('ZADD', users_key, 'NX', 0, user)
if wake ~= '' then redis.call('PUBLISH', wake, '') end
"""

_CLAIM = """
local users_key, need_key, arq_queue, handovers = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local queued_prefix, running_prefix = ARGV[1], ARGV[2]
local room, now, lapse = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
while true do
  local handover = redis.call('ZRANGE', handovers, 0, 0)[1]
  if handover == nil then break end
  redis.call('ZREM', handovers, handover)
  if redis.call('ZSCORE', arq_queue, handover) then
    redis.call('ZADD', arq_queue, 'XX', now, handover)
    return {handover, '0'}
  end
end
local best, best_user, best_need, best_running, best_at
for _, user in ipairs(redis.call('ZRANGE', users_key, 0, -1)) do
  local queued = queued_prefix .. user
  while true do
    local head = redis.call('ZRANGE', queued, 0, 0, 'WITHSCORES')
    if #head == 0 then
      redis.call('ZREM', users_key, user)
      break
    end
    if redis.call('ZSCORE', arq_queue, head[1]) then
      local need = tonumber(redis.call('HGET', need_key, head[1]) or '0')
      if room < 0 or need <= room then
        local running = running_prefix .. user
        redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
        local count = redis.call('ZCARD', running)
        local at = tonumber(head[2])
        if best == nil or count < best_running or (count == best_running and at < best_at) then
          best, best_user, best_need, best_running, best_at = head[1], user, need, count, at
        end
      end
      break
    end
    -- Its job is gone (started or lost): the sweep enqueues the run again if it is still QUEUED.
    redis.call('ZREM', queued, head[1])
    redis.call('HDEL', need_key, head[1])
  end
end
if best == nil then return false end
local queued = queued_prefix .. best_user
redis.call('ZREM', queued, best)
if redis.call('ZCARD', queued) == 0 then redis.call('ZREM', users_key, best_user) end
redis.call('HDEL', need_key, best)
local running = running_prefix .. best_user
redis.call('ZADD', running, now + lapse, best)
redis.call('PEXPIRE', running, lapse)
redis.call('ZADD', arq_queue, 'XX', now, best)
return {best, tostring(best_need)}
"""


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run waiting for a worker, as the scheduler sees it."""

    execution_id: UUID
    owner_id: UUID
    memory_mib: int
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class Claimed:
    """A run a worker just claimed: its arq job id and the memory it may use."""

    job_id: str
    memory_mib: int


class FairQueue:
    """The per-user queues and in-progress sets in one Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._add = redis.register_script(_ADD)

    async def add(self, run: QueuedRun, job: bytes, expires_ms: int, *, wake: str | None = None) -> None:
        """Enqueue the run's arq job `job` (serialized, id: the run's) held until a claim, and queue the run behind
        its user's earlier ones; publish on channel `wake`. One round trip, as one step: a job already there (or
        its result) is kept as it is, and adding a run already queued changes nothing."""
        execution_id, owner_id = str(run.execution_id), str(run.owner_id)
        await self._add(
            keys=[
                job_key_prefix + execution_id,
                result_key_prefix + execution_id,
                self.keys.queue,
                self.keys.fair_need,
                self.keys.fair_queued(owner_id),
                self.keys.fair_users,
            ],
            args=[
                execution_id,
                job,
                expires_ms,
                to_unix_ms(HELD_UNTIL),
                run.memory_mib,
                _ms(run.queued_at),
                owner_id,
                wake or "",
            ],
        )

    async def claim(self, room_mib: int) -> Claimed | None:
        """Take a hand-over job, else the fairest run that fits in `room_mib` (ANY_SIZE: any run), and make its
        job due; None if there is none."""
        claimed = await self.redis.eval(  # type: ignore[misc]
            _CLAIM,
            4,
            self.keys.fair_users,
            self.keys.fair_need,
            self.keys.queue,
            self.keys.fair_handovers,
            self.keys.fair_queued(""),
            self.keys.fair_running(""),
            str(room_mib),
            str(int(time.time() * 1000)),
            str(RUNNING_LAPSE_MS),
        )
        if not claimed:
            return None
        job_id, need = claimed
        return Claimed(job_id=job_id.decode(), memory_mib=int(need))

    async def hand_over(self, job_id: str) -> None:
        """Queue a job that takes over a run whose worker died (its sandbox lives on); it goes before any run."""
        await self.redis.zadd(self.keys.fair_handovers, {job_id: int(time.time() * 1000)}, nx=True)

    async def release(self, owner_id: UUID, execution_id: UUID) -> None:
        """The run ended (or was cancelled while queued): it no longer waits nor counts as in progress.

        A held job of a run cancelled in the queue would never come due: it is removed with the rest.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            self.release_in(pipe, owner_id, execution_id)
            await pipe.execute()

    def release_in(self, pipe: Pipeline, owner_id: UUID, execution_id: UUID) -> None:
        """`release`, as commands of the caller's pipeline."""
        member = str(execution_id)
        pipe.zrem(self.keys.queue, member)
        pipe.delete(job_key_prefix + member)
        pipe.zrem(self.keys.fair_running(str(owner_id)), member)
        pipe.zrem(self.keys.fair_queued(str(owner_id)), member)
        pipe.hdel(self.keys.fair_need, member)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
