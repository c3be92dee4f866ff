"""The monthly cap email (docs/analytics.md, "The monthly cap"): the events
function queues each ``scans.cap_reached`` event here; this function sends the
email to the account's owner with SES, once per scope and month (the month
item's ``cap_email`` claim), apart from counting so that nothing a mail service
does can hold up the aggregates. A failed send is retried by SQS (visibility
timeout), then lands in the queue's dead-letter queue (alarmed)."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from qrpro.services import scans

logger = Logger(service="qrpro-mail")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> bool:
    try:
        data = json.loads(record.body)
        scope, month, plan_name = str(data["scope"]), str(data["month"]), str(data["plan"])
    except (ValueError, KeyError, TypeError):
        logger.warning("dropped a malformed cap email message")
        return False
    return scans.send_cap_email(scope, month, plan_name, int(time.time()))


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
