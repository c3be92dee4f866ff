"""The panes' compaction (docs/analytics.md, "Counting through panes"): every 15
minutes (EventBridge), each open day's panes folded into the aggregate items
readers read, the codes' lifetime counts and the month's count, then the cap
check; days that ended are closed.

Its own function rather than the scans aggregator's: a busy day's panes take
longer to fold than the aggregator's 30 s (bound to its SQS visibility), and
folding is CPU work, so it runs with the memory of one full vCPU. A run that
nears its timeout starts no more days; the next run, in another order, takes
them.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from qrpro.services import scans

logger = Logger(service="qrpro-compaction")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"compacted": scans.compact(int(time.time()), lambda: context.get_remaining_time_in_millis() / 1000)}
