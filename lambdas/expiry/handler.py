"""The expiry function: an EventBridge schedule (locally the stack's
scheduler) runs the expiry job as of the current time."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.services import expiry

logger = Logger(service="qrpro-expiry")
SAFETY_MS = 10_000  # stop starting new work this long before the function's timeout


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    remaining_ms = context.get_remaining_time_in_millis()
    deadline = time.monotonic() + max(1_000, remaining_ms - SAFETY_MS) / 1000
    summary = expiry.run(int(time.time()), deadline=deadline)
    logger.info("expiry run", extra={"summary": summary})
    return summary
