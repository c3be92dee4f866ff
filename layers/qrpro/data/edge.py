"""What the redirect reads and writes: the shortcode and plan lookups, and the
enqueue of a scan (SQS; if SQS fails, a pending-scan item in DynamoDB; if that
fails too, a buffer in this container's memory). Design: docs/analytics.md.

The redirect imports this module on its hot path: it imports only the standard
library, boto3 and import-light parts of ``qrpro``. What the aggregator and the
analytics need lives in ``qrpro.data.counting``, ``qrpro.data.caps`` and
``qrpro.data.analytics``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data.table import key, table
from qrpro.domain import scan_codec as codec
from qrpro.domain.redirects import PlanState, Target
from qrpro.domain.scan_codec import Scan

log = logging.getLogger("qrpro.scans")

PENDING_SHARDS = 10  # pending-scan items are spread over this many partitions (docs/data-model.md)

# -- clients for the redirect: short timeouts, it must never wait long on counting -----------

_FAST = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=0.25, read_timeout=0.5,
               max_pool_connections=10)
# A scan-limit claim is never sent twice (a retry of a claim that landed would spend a second place):
# one attempt, and a longer wait for its answer.
CLAIM_READ_TIMEOUT = 1.0


@cache
def _fast_client(service: str, endpoint: str | None, read_timeout: float | None = None) -> Any:
    if read_timeout is None:
        return boto3.client(service, config=_FAST)  # type: ignore[call-overload]
    once = _FAST.merge(Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=read_timeout))
    return boto3.client(service, config=once)  # type: ignore[call-overload]


def fast(service: str, read_timeout: float | None = None) -> Any:
    """A client with tight timeouts (keyed on the endpoint, which tests change); with
    ``read_timeout``, one that never retries."""
    return _fast_client(service, os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}"), read_timeout)


# -- lookups ------------------------------------------------------------------------------

def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if value else None


def _n(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else None


def lookup_short(shortcode: str) -> Target | None:
    """The shortcode projection (or None if there is no such shortcode). ``scans_total`` and the
    ``ld_{yyyymmdd}`` day counts are what earlier designs counted there: the first value of the
    code's scan-limit counter when it has none yet (docs/analytics.md, "Migration")."""
    out = fast("dynamodb").get_item(TableName=table(), Key=key(k.pk_short(shortcode), "SHORT"), ConsistentRead=True)
    item = out.get("Item")
    if not item:
        return None
    routing = _s(item, "routing")  # compact JSON (never a map: no Decimal), parsed once per cache fill
    scans = sum(int(v["N"]) for name, v in item.items() if name == "scans_total" or name.startswith("ld_"))
    return Target(code_id=_s(item, "code_id") or "", scope=_s(item, "scope") or "", url=_s(item, "url") or "",
                  status=_s(item, "status") or "", grace_until=_n(item, "grace_until"),
                  routing=json.loads(routing) if routing else None, scans_total=scans)


def lookup_plan(scope: str) -> PlanState | None:
    """The scope's plan and plan status (or None if the profile is gone)."""
    out = fast("dynamodb").get_item(
        TableName=table(), Key=key(scope, k.PROFILE), ConsistentRead=True,
        ProjectionExpression="#p, plan_status, plan_status_at, codes_used", ExpressionAttributeNames={"#p": "plan"})
    item = out.get("Item")
    if not item:
        return None
    return PlanState(plan=_s(item, "plan") or "solo", plan_status=_s(item, "plan_status") or "active",
                     plan_status_at=_n(item, "plan_status_at") or 0, codes=_n(item, "codes_used") or 0)


# -- the scan limit (routing max_scans): exact, one conditional write per counted scan ----------

LIMIT_SK = "LIMIT"


def claim_place(code_id: str, max_scans: int, legacy: int) -> bool:
    """Count one scan against the code's limit if it is under it: True, the scan has its place;
    False, the limit is reached. However many scans arrive at once, at most ``max_scans`` get one.
    ``legacy``: the count to start from when the counter does not exist yet. Raises when DynamoDB
    did not answer (the redirect answers 503: never a place it could not count; a claim that
    landed unanswered spends its place, so fewer scans than the limit may reach the code then)."""
    try:
        fast("dynamodb", CLAIM_READ_TIMEOUT).update_item(
            TableName=table(), Key=key(k.pk_limit(code_id), LIMIT_SK),
            UpdateExpression="SET n = if_not_exists(n, :legacy) + :one",
            ConditionExpression="(attribute_not_exists(n) AND :legacy < :max) OR n < :max",
            ExpressionAttributeValues={":legacy": {"N": str(legacy)}, ":one": {"N": "1"},
                                       ":max": {"N": str(max_scans)}})
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def limit_count(code_id: str, legacy: int) -> int:
    """The code's counted scans under its limit (for requests that are not counted: HEAD, bots)."""
    item = fast("dynamodb").get_item(TableName=table(), Key=key(k.pk_limit(code_id), LIMIT_SK),
                                     ConsistentRead=True).get("Item")
    return _n(item, "n") or 0 if item else legacy


# -- enqueue ------------------------------------------------------------------------------

def scan_message(code_id: str, scope: str, plan_name: str, now: int, country_code: str, device: str,
                 target: str = "default", codes: int = 0, os: str = "other", bot: bool = False) -> str:
    """One scan as a queue message (``qrpro.domain.scan_codec``): a random id (every copy of the
    scan carries it) and what docs/api.md allows a scan to keep, the time cut to the hour."""
    return codec.message(Scan(id=uuid.uuid4().hex, code_id=code_id, scope=scope, plan=plan_name,
                              hour=time.strftime("%Y-%m-%d-%H", time.gmtime(now)), country=country_code,
                              device=device, target=target, codes=codes, os=os, bot=bot))


_unsent: list[str] = []  # scans neither SQS nor DynamoDB accepted: retried with the next scan
MAX_UNSENT = 10_000
BREAKER_SECONDS = 5.0  # after a failure, skip that service for this long: one visitor waits, not all
_down_until: dict[str, float] = {"sqs": 0.0, "dynamodb": 0.0}


def _send(bodies: list[str]) -> list[str]:
    """Send ≤ 10 messages in one call; returns those not accepted."""
    sqs, url = fast("sqs"), settings().scans_queue_url
    if len(bodies) == 1:
        sqs.send_message(QueueUrl=url, MessageBody=bodies[0])
        return []
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)])
    return [bodies[int(f["Id"])] for f in out.get("Failed", [])]


def _save_pending(body: str) -> None:
    scan_id = json.loads(body)["id"]
    fast("dynamodb").put_item(TableName=table(), Item={
        "pk": {"S": k.pk_pending(random.randrange(PENDING_SHARDS))}, "sk": {"S": scan_id},
        "scan": {"S": body}})


def _try(service: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, or None when it failed or the service is in its breaker window."""
    clock = time.monotonic()
    if _down_until[service] > clock:
        return None
    try:
        result = call(*args)
    except (ClientError, BotoCoreError):
        _down_until[service] = time.monotonic() + BREAKER_SECONDS
        return None
    return True if result is None else result


def enqueue(body: str) -> str:
    """Hand one scan to the aggregator without ever raising: SQS (one call,
    carrying up to 9 earlier unsent scans along); if SQS fails, a pending-scan
    item in DynamoDB that the aggregator drains; if that fails too, an
    in-memory buffer retried with the next scan of this container.
    Returns ``queued``, ``pending`` or ``buffered``."""
    earlier = _unsent[:9]
    del _unsent[:9]
    bodies = [body, *earlier]
    sent = _try("sqs", _send, bodies)
    failed = bodies if sent is None else ([] if sent is True else list(sent))
    if not failed:
        return "queued"
    status = "queued"
    for b in failed:
        if b is body:
            status = "pending" if _try("dynamodb", _save_pending, b) else "buffered"
            if status == "pending":
                continue
        if len(_unsent) < MAX_UNSENT:
            _unsent.append(b if b is not body else codec.resent(b))  # its send may have reached SQS
        else:
            log.error("scan buffer full: a scan could not be recorded")
    return status
