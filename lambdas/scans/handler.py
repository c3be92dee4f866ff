"""The scans aggregator: an SQS batch of scans (one message per scan, sent by
the redirect) folded into a few atomic counter updates, exactly once.

Reports partial batch failures (``ReportBatchItemFailures`` on the event
source mapping): scans that could not be written (throttling, conflicts) are
redelivered by SQS; scans already counted are recognised by their marker and
dropped. See docs/analytics.md.

Scans the redirect parked in DynamoDB while SQS failed are counted by the
same function: opportunistically after a batch, and on a schedule
(EventBridge; the local stack's scheduler) whether or not scans arrive.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from qrpro.data.counting import Scan, parse
from qrpro.services import scans

log = logging.getLogger("qrpro.scans")
DRAIN_EVERY = 30.0  # seconds between looks at scans the redirect parked in DynamoDB
_last_drain = 0.0


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("source") == "aws.events":
        return {"drained": drain(context)}
    return aggregate(event)


def drain(context: Any) -> int:
    """The schedule's run: count every parked scan, so none waits for the next
    SQS batch to reach a warm container (after an outage there may be none)."""
    total = 0
    while True:
        counted = scans.drain_pending(int(time.time()))
        total += counted
        if counted == 0 or context.get_remaining_time_in_millis() < 10_000:
            return total


def aggregate(event: dict[str, Any]) -> dict[str, Any]:
    global _last_drain
    now = int(time.time())
    batch: list[Scan] = []
    for record in event.get("Records", []):
        scan = parse(record.get("body") or "", record.get("messageId", ""))
        if scan is None:
            # Not a scan of ours; never retried. The body is not logged (privacy).
            log.warning("dropped a malformed scan message")
            continue
        batch.append(scan)
    failed = scans.aggregate(batch, now)
    if time.monotonic() - _last_drain > DRAIN_EVERY:
        _last_drain = time.monotonic()
        try:
            scans.drain_pending(now)
        except Exception as err:  # the batch itself is done; the next drain retries
            log.warning("draining pending scans failed: %s", type(err).__name__)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in sorted({s.message_id for s in failed})]}
