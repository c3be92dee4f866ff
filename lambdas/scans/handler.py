"""The scans aggregator: an SQS batch of scans (one message per scan, sent by
the redirect) written as panes, one item per scope, day and plan; the
compaction folds them later (``lambdas/compaction``). docs/analytics.md, "How a
scan is counted".

Reports partial batch failures (``ReportBatchItemFailures`` on the event
source mapping) through Powertools' ``BatchProcessor``: scans whose pane could
not be written (throttling) are redelivered by SQS; a scan written twice is a
repeated row that every fold counts once. Each record carries SQS's
``SentTimestamp``, which bounds where earlier copies of its scan can be.

Scans the redirect parked in DynamoDB while SQS failed are written by the
same function: opportunistically after a batch, and on a schedule
(EventBridge; the local stack's scheduler) whether or not scans arrive.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from qrpro.domain.scan_codec import Scan, parse_message
from qrpro.services import scans

logger = Logger(service="qrpro-scans")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
DRAIN_EVERY = 30.0  # seconds between looks at scans the redirect parked in DynamoDB
_last_drain = 0.0


class NotCounted(Exception):
    """Reported as a batch item failure: SQS redelivers the message (a copy written after all
    is a repeated row, counted once)."""


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | PartialItemFailureResponse:
    if event.get("source") == "aws.events":
        return {"drained": drain(context)}
    return aggregate(event, context)


def drain(context: Any) -> int:
    """The schedule's run: count every parked scan, so none waits for the next
    SQS batch to reach a warm container (after an outage there may be none)."""
    total = 0
    while True:
        counted = scans.drain_pending(int(time.time()))
        total += counted
        if counted == 0 or context.get_remaining_time_in_millis() < 10_000:
            return total


def _batch(records: list[dict[str, Any]]) -> list[Scan]:
    batch: list[Scan] = []
    for record in records:
        sent = str((record.get("attributes") or {}).get("SentTimestamp") or "")
        scan = parse_message(record.get("body") or "", record.get("messageId", ""),
                             sent_ms=int(sent) if sent.isdigit() else None)
        if scan is None:
            # Not a scan of ours; never retried. The body is not logged (privacy).
            logger.warning("dropped a malformed scan message")
            continue
        batch.append(scan)
    return batch


def aggregate(event: dict[str, Any], context: Any = None) -> PartialItemFailureResponse:
    global _last_drain
    now = int(time.time())
    records = event.get("Records") or []
    failed = {s.message_id for s in scans.aggregate(_batch(records), now)}

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise NotCounted("scan not counted yet")

    response: PartialItemFailureResponse = {"batchItemFailures": []}
    if records:  # Powertools refuses an event without records; there is nothing to report
        response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                            context=context)
    if time.monotonic() - _last_drain > DRAIN_EVERY:
        _last_drain = time.monotonic()
        try:
            scans.drain_pending(now)
        except Exception as err:  # the batch itself is done; the next drain retries
            logger.warning("draining pending scans failed: %s", type(err).__name__)
    return response
