"""Webhook delivery: one attempt per queue message (docs/api.md section 10).

Backoff uses the message's visibility: after a failed attempt the message's
visibility timeout is set to the next delay of the schedule (5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 10 h, with jitter; at most 12 h, which SQS allows) and
the record is reported as a batch item failure, so the same message comes back
when it is due. The attempt number is the message's receive count. Success,
a 410, a gone or disabled webhook, or the end of the schedule delete the
message (the handler reports success for it). See docs/webhooks.md.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.config import settings
from qrpro.data.aws import client
from qrpro.data.table import unavailable_on_throttle
from qrpro.data.webhooks import Message
from qrpro.services import webhooks

logger = Logger(service="qrpro-webhooks")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetryLater(Exception):
    """Reported as a batch item failure: the message returns after its new visibility timeout."""


def _queue_url(record: SQSRecord) -> str:
    return settings().webhooks_queue_url or record.queue_url  # the function's own queue


def record_handler(record: SQSRecord) -> None:
    msg = Message.from_json(record.body)
    number = int(record.attributes.approximate_receive_count or 1)
    outcome = webhooks.deliver(msg, number)
    if outcome.retry_in is None:
        return
    with unavailable_on_throttle():
        client("sqs").change_message_visibility(QueueUrl=_queue_url(record), ReceiptHandle=record.receipt_handle,
                                                VisibilityTimeout=outcome.retry_in)
    logger.info("delivery failed; retrying later", extra={
        "webhook_id": msg.webhook_id, "event_id": msg.event_id, "attempt": number,
        "retry_in": outcome.retry_in, "status_code": outcome.record.status_code if outcome.record else None})
    raise RetryLater(f"attempt {number} failed")


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
