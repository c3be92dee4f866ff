"""The export function: `GET /api/user/export` only (docs/api.md section 11).

Its own Lambda (more memory and time than the API function); the same
request pipeline (authorisation, plan, exact daily budget, expired-plan
exemption) and the same error envelope. Its resolver runs without Powertools'
request validation, so the function loads no pydantic: the route checks its
one parameter itself (``qrpro.api.export_routes``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.api import errors, pipeline
from qrpro.api.export_routes import make_serving_router
from qrpro.services import export  # noqa: F401  (its one route's work: loaded at init, not in the first request)

logger = Logger(service="qrpro-export")
metrics = Metrics(namespace="QRPro", service="qrpro-export")

ROUTERS = (make_serving_router(),)
app = APIGatewayRestResolver()
app.include_router(ROUTERS[0])
errors.install(app, logger, ROUTERS)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pipeline.handle(app, event, context, logger)
