"""The panes' compaction (docs/analytics.md, "Counting through panes"): every 15
minutes (EventBridge), each open day's panes folded into the aggregate items
readers read, the codes' lifetime counts and the month's count, then the cap
check; days that ended are closed.

Its own function rather than the scans aggregator's: a busy day's panes take
longer to fold than the aggregator's 30 s (bound to its SQS visibility), and
folding is CPU work, so it runs with the memory of one full vCPU. A run that
nears its timeout starts no more days; the next run, in another order, takes
them. How many it left is the metric ``CompactionDaysLeft`` (alarmed: one run
no longer covers every open day).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from qrpro.services import scans

logger = Logger(service="qrpro-compaction")
metrics = Metrics(namespace="QRPro", service="qrpro-compaction")
DAYS_LEFT = "CompactionDaysLeft"  # infra/constructs/monitoring.py alarms on it


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    done, left = scans.compact(int(time.time()), lambda: context.get_remaining_time_in_millis() / 1000)
    metrics.add_metric(name=DAYS_LEFT, unit=MetricUnit.Count, value=left)
    return {"compacted": done, "left": left}
