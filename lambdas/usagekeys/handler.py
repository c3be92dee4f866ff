"""Gateway keys follow the table (the stream consumer of docs/deploy.md, "API
keys and usage plans"). Lambda's filter criteria hand over only:

- a key listing (``USER#{uid}`` / ``KEY#{kid}``) inserted: the key gets its own
  API Gateway key on its user's highest tier; removed (revoked): its gateway
  key is deleted;
- a profile (``USER#`` or ``TEAM#`` / ``PROFILE``) modified: when its plan is
  not the one its keys were last synced to (``synced_plan``), the user's keys
  (a team's: every member's) move; any other change costs no read;
- a team membership (``TEAM#{tid}`` / ``MEMBER#{uid}``) inserted or removed:
  the member's keys move.

A failed record is reported (``ReportBatchItemFailures``) and retried; until
it lands the key rides on the fallback key. Past the account's API key quota
a key stays there (metric ``UsageKeysOnFallback``) without failing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.data import usage_keys as uk
from qrpro.data.table import from_item

logger = Logger(service="qrpro-usagekeys")
metrics = Metrics(namespace="QRPro", service="qrpro-usagekeys")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


class RateLimited(Exception):
    """CreateApiKey stayed throttled through botocore's retries: the mapping retries the record."""


def _keys(record: DynamoDBRecord) -> tuple[str, str]:
    keys = record.raw_event.get("dynamodb", {}).get("Keys", {})
    return str(keys.get("pk", {}).get("S", "")), str(keys.get("sk", {}).get("S", ""))


def _sync(user_ids: list[str]) -> list[dict[str, Any]]:
    plans = uk.plan_ids_from_env()
    report = [entry for user_id in user_ids for entry in uk.sync_user(user_id, plans)]
    on_fallback = [r for r in report if r.get("error")]
    if on_fallback:
        metrics.add_metric(name="UsageKeysOnFallback", unit=MetricUnit.Count, value=len(on_fallback))
        logger.warning("keys left on the fallback key", extra={"keys": on_fallback})
    if any(r.get("error") == uk.RATE_LIMITED for r in on_fallback):
        raise RateLimited("CreateApiKey is throttled")
    return report


def record_handler(record: DynamoDBRecord) -> list[dict[str, Any]]:
    event = record.raw_event.get("eventName")
    pk, sk = _keys(record)
    if pk.startswith("USER#") and sk.startswith("KEY#"):
        if event == "REMOVE":
            removed = uk.remove_key(sk.removeprefix("KEY#"))
            return [{"key_id": sk.removeprefix("KEY#"), "change": "deleted" if removed else None}]
        return _sync([pk.removeprefix("USER#")])
    if pk.startswith("TEAM#") and sk.startswith("MEMBER#"):
        return _sync([sk.removeprefix("MEMBER#")])
    if sk == "PROFILE":
        profile = from_item(record.raw_event.get("dynamodb", {}).get("NewImage")) or {}
        plan = profile.get("plan")
        if not plan or profile.get("synced_plan") == plan:
            return []
        users = [pk.removeprefix("USER#")] if pk.startswith("USER#") else uk.member_ids(pk.removeprefix("TEAM#"))
        report = _sync(users)
        uk.mark_synced(pk, str(plan))
        return report
    return []


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
