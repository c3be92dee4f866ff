"""The outbox fan-out: the table stream hands over every new ``EVENT#`` item
(code.created, code.updated, ...); each becomes one queue message per active
webhook of the event's scope subscribed to its type. A ``scans.cap_reached``
event also goes to the mail function's queue (the cap email).

Partial failures: a record that could not be fanned out is reported by its
sequence number, so the mapping retries from there (at least once; a repeat
is deduplicated by receivers on ``webhook-id``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.data import caps
from qrpro.data.outbox import Event
from qrpro.data.table import from_item
from qrpro.services import webhooks

logger = Logger(service="qrpro-events")
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


def record_handler(record: DynamoDBRecord) -> int:
    if record.raw_event.get("eventName") != "INSERT":
        return 0
    item = from_item(record.raw_event.get("dynamodb", {}).get("NewImage"))
    event = Event.from_item(item) if item else None
    if event is None:
        return 0
    if event.event_type == "scans.cap_reached":
        caps.queue_cap_email(event)
    queued = webhooks.fan_out(event)
    logger.debug("event fanned out", extra={"event_id": event.id, "event_type": event.event_type,
                                            "deliveries": queued})
    return queued


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                    context=context)
