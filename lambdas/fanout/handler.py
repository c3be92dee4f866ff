"""The compaction's fan-out (docs/analytics.md, "How a scan is counted"): every
minute (EventBridge), record a fence (the panes' sequence counter as read now)
and queue one fold job per open day, up to the newest fence every pane below
which is written. The compaction function takes the jobs from the queue.

Asynchronous and idempotent: a run that fails is simply the next minute's
(no retries; its failures land in its on-failure destination)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from qrpro.services import scans

logger = Logger(service="qrpro-fanout")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"jobs": scans.sweep(int(time.time()))}
