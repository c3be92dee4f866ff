"""Exact per-key daily budgets: one counter item per key per UTC day.

A single conditional ``ADD`` both checks and consumes, so concurrent requests
can never spend more than the budget. The item expires by TTL two days later.
"""

from __future__ import annotations

from dataclasses import dataclass

from qrpro.data import keys as k
from qrpro.data.table import av, get_one, key, update_if
from qrpro.domain.clock import DAY, day_bucket, next_midnight
from qrpro.domain.errors import RateLimited


@dataclass(frozen=True)
class Budget:
    limit: int
    used: int
    reset_at: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def consume(key_id: str, limit: int, now: int) -> Budget:
    """Spend one request of today's budget, or raise ``RateLimited``."""
    reset_at = next_midnight(now)
    out = update_if(Key=key(k.pk_rate(key_id, day_bucket(now)), "RATE"),
                    UpdateExpression="ADD used :one SET #ttl = if_not_exists(#ttl, :ttl)",
                    ConditionExpression="attribute_not_exists(used) OR used < :limit",
                    ExpressionAttributeNames={"#ttl": k.TTL},
                    ExpressionAttributeValues={":one": av(1), ":limit": av(limit), ":ttl": av(reset_at + DAY)},
                    ReturnValues="UPDATED_NEW")
    if out is None:
        raise RateLimited(retry_at=reset_at, now=now, limit=limit)
    return Budget(limit, int(out["used"]), reset_at)


def used_today(key_id: str, now: int) -> int:
    item = get_one(k.pk_rate(key_id, day_bucket(now)), "RATE") or {}
    return int(item.get("used", 0))
