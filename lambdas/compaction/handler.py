"""The compaction (docs/analytics.md, "How a scan is counted"): fold jobs from
its SQS queue (one per open scope and day, queued every minute by the fan-out,
up to 50 to a message, checked side by side), each folding the day's panes from
its checkpoint up to the job's fence into the analytics aggregates and the
month's count once they are due, a bounded step at a time, and closing a day
that ended and has nothing left.

Scales by adding workers: the queue's event source mapping runs up to its
maximum concurrency of these at once; two jobs of the same day are safe
together (a step is announced before its writes, each item takes it once). A
job that fails is redelivered, then lands in the dead-letter queue (alarmed).
``FoldLagSeconds``: how far behind the aggregates are once a job is done (the
age of its fence), alarmed above 5 minutes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from qrpro.domain.scan_codec import Job, parse_jobs
from qrpro.services import scans

logger = Logger(service="qrpro-compaction")
metrics = Metrics(namespace="QRPro", service="qrpro-compaction")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
LAG = "FoldLagSeconds"  # infra/constructs/monitoring.py alarms on it
SIDE_BY_SIDE = 8  # a message's days checked and folded at once (most have nothing due: a read or two each)


def _fold(jobs: list[Job], context: Any) -> None:
    """Every job of a message, side by side; one that fails fails the message (it comes back:
    the days done meanwhile have nothing left to do then)."""
    left = (lambda: context.get_remaining_time_in_millis() / 1000) if context is not None else None
    now = int(time.time())
    with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE, thread_name_prefix="day") as pool:
        done = list(pool.map(lambda job: scans.fold(job, now, left), jobs))
    if jobs and jobs[0].at and all(d.caught_up for d in done):
        metrics.add_metric(name=LAG, unit=MetricUnit.Seconds, value=max(0, int(time.time()) - jobs[0].at))


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    def record_handler(record: SQSRecord) -> None:
        jobs = parse_jobs(record.body)
        if jobs is None:
            logger.warning("dropped a malformed fold job")
            return
        _fold(jobs, context)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
