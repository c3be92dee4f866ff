"""The scheduled expiry job (docs/api.md sections 3 and 6.5; access patterns 32 and 33).

- Codes in ``grace`` whose ``grace_until`` has passed become ``expired``
  (the redirect answers 410): found on the sparse due-date index ``gsi1``
  (``DUE#CODE_GRACE``), never by a Scan; each one through
  ``qrpro.data.codes.expire``, a conditional transaction (status still grace,
  version unchanged) with its history entry and exactly one ``code.expired``
  outbox event. A code reactivated meanwhile is left alone.
- Accounts and teams whose plan has been in ``grace`` for 90 days become
  ``expired`` (``DUE#PLAN_GRACE``): one conditional update per profile
  (still grace, entered grace at least 90 days ago) that also takes it off
  the index.

Idempotent and safe to run twice at once (every write is conditional: the
loser of a race finds nothing to do), and safe to resume after a crash (no
state of its own: what is still due is still on the index). Work per run is
bounded by ``max_items`` and an optional deadline; ``remaining: true`` says
the next run has more to do, and it simply picks that up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import codes
from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import av, error_code, key, table, unavailable_on_throttle
from qrpro.domain.plans import PLAN_GRACE_SECONDS, PlanStatus

PAGE = 100  # index entries read per Query
WORKERS = 8  # transitions written in parallel


class _Due:
    """The base keys (pk, sk) of the items due at ``now`` on one ``gsi1`` partition, oldest due date
    first, at most ``limit`` of them, pages read until ``deadline``.

    ``gsi1sk`` is ``{due:012d}#{id}``: everything due at or before ``now`` sorts before
    ``{now + 1:012d}#``.
    """

    def __init__(self, partition: str, now: int, limit: int, deadline: float | None) -> None:
        self.limit, self.deadline = limit, deadline
        self.params: dict[str, Any] = {
            "TableName": table(), "IndexName": k.GSI1,
            "KeyConditionExpression": f"{k.GSI1PK} = :p AND {k.GSI1SK} < :bound",
            "ExpressionAttributeValues": {":p": av(partition), ":bound": av(f"{now + 1:012d}#")},
        }
        self.exhausted = False

    def __iter__(self) -> Iterator[tuple[str, str]]:
        seen = 0
        while seen < self.limit and not _late(self.deadline):
            page = self._query(min(PAGE, self.limit - seen))
            for raw in page.get("Items", []):
                seen += 1
                yield raw[k.PK]["S"], raw[k.SK]["S"]
            if "LastEvaluatedKey" not in page:
                self.exhausted = True
                return
            self.params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _query(self, limit: int) -> dict[str, Any]:
        with unavailable_on_throttle():
            page: dict[str, Any] = ddb().query(**self.params, Limit=limit)
        return page

    def more(self) -> bool:
        """Whether due entries are left beyond the ones handed out (one probe read)."""
        return not self.exhausted and bool(self._query(1).get("Items"))


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def expire_plan(scope: str, now: int) -> bool:
    """``grace`` → ``expired`` for a user or team profile that entered grace 90 days ago or more.
    False when there is nothing to do (back to active meanwhile, not due yet, already expired)."""
    try:
        with unavailable_on_throttle():
            ddb().update_item(
                TableName=table(), Key=key(scope, k.PROFILE),
                UpdateExpression=f"SET plan_status = :expired, plan_status_at = :now REMOVE {k.GSI1PK}, {k.GSI1SK}",
                ConditionExpression="plan_status = :grace AND plan_status_at <= :since",
                ExpressionAttributeValues={":expired": av(PlanStatus.EXPIRED.value), ":now": av(now),
                                           ":grace": av(PlanStatus.GRACE.value),
                                           ":since": av(now - PLAN_GRACE_SECONDS)})
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise
        _drop_stale_due(scope)
        return False
    return True


def _drop_stale_due(scope: str) -> None:
    """A profile on the plan index that is no longer in grace (a stale entry) leaves the index."""
    try:
        with unavailable_on_throttle():
            ddb().update_item(
                TableName=table(), Key=key(scope, k.PROFILE), UpdateExpression=f"REMOVE {k.GSI1PK}, {k.GSI1SK}",
                ConditionExpression=f"attribute_exists({k.GSI1PK}) AND plan_status <> :grace",
                ExpressionAttributeValues={":grace": av(PlanStatus.GRACE.value)})
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def _expire_code(entry: tuple[str, str], now: int) -> bool:
    scope, sk = entry
    return codes.expire(scope, sk.removeprefix("CODE#"), now)


def _expire_plan(entry: tuple[str, str], now: int) -> bool:
    return expire_plan(entry[0], now)


def _run_phase(pool: ThreadPoolExecutor, partition: str, apply: Callable[[tuple[str, str], int], bool], now: int,
               limit: int, deadline: float | None) -> tuple[int, int, int, bool]:
    """(done, skipped, looked at, more left) for the due entries of one partition."""
    done = skipped = seen = 0
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal done, skipped
        for changed in pool.map(lambda entry: apply(entry, now), batch):
            done, skipped = done + changed, skipped + (not changed)
        batch.clear()

    due = _Due(partition, now, limit, deadline)
    for entry in due:
        seen += 1
        batch.append(entry)
        if len(batch) >= PAGE:
            flush()
    flush()
    return done, skipped, seen, due.more()


def run(now: int, max_items: int = 1000, deadline: float | None = None) -> dict[str, Any]:
    """One run of the job as of ``now`` (unix seconds). Looks at no more than ``max_items`` due entries
    (plans first, with at most half of the budget, then codes) and starts no new page of work after
    ``deadline`` (a ``time.monotonic()`` value). Returns a JSON summary; ``remaining`` is true when
    due entries were left for the next run."""
    max_items = max(2, max_items)
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="expiry") as pool:
        plans_done, plans_skipped, plans_seen, plans_more = _run_phase(
            pool, k.GRACE_PLANS, _expire_plan, now, max_items // 2, deadline)
        codes_done, codes_skipped, _, codes_more = _run_phase(
            pool, k.GRACE_CODES, _expire_code, now, max_items - plans_seen, deadline)
    return {"now": now, "codes_expired": codes_done, "plans_expired": plans_done,
            "codes_skipped": codes_skipped, "plans_skipped": plans_skipped, "remaining": plans_more or codes_more}
