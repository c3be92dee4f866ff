"""The sparse due-date index ``gsi1`` (access patterns 32 and 33): codes in
grace (``DUE#CODE_GRACE``) and plans in grace (``DUE#PLAN_GRACE``), read by the
expiry job (``qrpro.services.expiry``), never by a Scan."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import av, key, table, unavailable_on_throttle, update_if
from qrpro.domain.plans import PlanStatus

PAGE = 100  # index entries read per Query

CODES = k.GRACE_CODES
PLANS = k.GRACE_PLANS


class Due:
    """The base keys (pk, sk) of the items due at ``now`` on one ``gsi1`` partition, oldest due date
    first, at most ``limit`` of them, pages read until ``deadline`` (a ``time.monotonic()`` value).

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
        while seen < self.limit and not (self.deadline is not None and time.monotonic() >= self.deadline):
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


def expire_plan(scope: str, now: int, in_grace_since: int) -> bool:
    """The profile's plan ``grace`` → ``expired`` if it entered grace at or before ``in_grace_since``,
    taking it off the index. False (and a stale index entry dropped) otherwise."""
    if update_if(Key=key(scope, k.PROFILE),
                 UpdateExpression=f"SET plan_status = :expired, plan_status_at = :now REMOVE {k.GSI1PK}, {k.GSI1SK}",
                 ConditionExpression="plan_status = :grace AND plan_status_at <= :since",
                 ExpressionAttributeValues={":expired": av(PlanStatus.EXPIRED.value), ":now": av(now),
                                            ":grace": av(PlanStatus.GRACE.value), ":since": av(in_grace_since)},
                 ) is not None:
        return True
    # A profile on the plan index that is no longer in grace (a stale entry) leaves the index.
    update_if(Key=key(scope, k.PROFILE), UpdateExpression=f"REMOVE {k.GSI1PK}, {k.GSI1SK}",
              ConditionExpression=f"attribute_exists({k.GSI1PK}) AND plan_status <> :grace",
              ExpressionAttributeValues={":grace": av(PlanStatus.GRACE.value)})
    return False
