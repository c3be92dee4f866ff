"""The API function: every `/api/*` route and the OpenAPI document.

The export route is included for the document (and works here too), but API
Gateway sends `GET /api/user/export` to the export function, which has the
memory, timeout and S3 permissions it needs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.api.routes import analytics, codes, groups, keys, qr, teams, user, webhooks
from qrpro.api import errors, export_routes, pipeline

logger = Logger(service="qrpro-api")
tracer = Tracer(service="qrpro-api")
metrics = Metrics(namespace="QRPro", service="qrpro-api")

app = APIGatewayRestResolver(enable_validation=True)
app.configure_openapi(
    title="QR Pro API",
    version="1.0.0",
    summary="Dynamic QR codes: create, redirect, analyse, export.",
    security_schemes={"bearer": HTTPBearer(bearerFormat="abnd_qrpro_<secret>")},
    security=[{"bearer": []}],
)
errors.install(app)
# Static paths (/api/codes/import) are matched before parameterised ones.
for area in (codes, qr, analytics, groups, teams, user, keys, webhooks):
    app.include_router(area.router)
app.include_router(export_routes.make_router())


@app.get("/docs/openapi.json", include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    return app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pipeline.handle(app, event, context)
