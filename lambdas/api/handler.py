"""The API function: every `/api/*` route and the OpenAPI document.

The export route is included for the document (and works here too), but API
Gateway sends `GET /api/user/export` to the export function, which has the
memory, timeout and S3 permissions it needs."""

from __future__ import annotations

import json
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


IDEMPOTENT_POSTS = ("/api/codes", "/api/codes/import", "/api/codes/bulk", "/api/groups", "/api/webhooks")
_UNUSED_IF_UNREFERENCED = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _import_body() -> dict[str, Any]:
    """POST /api/codes/import reads its body itself (four shapes), so the document spells them out."""
    code = {"$ref": "#/components/schemas/CodeCreate"}
    many = {"type": "array", "items": code, "minItems": 1, "maxItems": 1000,
            "description": "1 to 1,000 codes (more: `413`)"}
    return {"required": True, "content": {
        "application/json": {"schema": {"oneOf": [
            {**code, "description": "one code"},
            many,
            {"type": "object", "properties": {"codes": many}, "required": ["codes"], "additionalProperties": False,
             "description": "`{codes: [...]}`"}]}},
        "text/csv": {"schema": {"type": "string", "description": "the export's `codes.csv`: a header row naming at "
                                                                 "least `url`; unknown columns, `id`, `shortcode`, "
                                                                 "`status` and timestamps are ignored"}},
    }}


def finish_document(doc: dict[str, Any]) -> dict[str, Any]:
    """What Powertools cannot say from the route signatures: no operation ever
    answers 422 (bad input is `400 validation_error`, documented per route), the
    import body, and the optional `Idempotency-Key` of the mutating POSTs."""
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            op["responses"].pop("422", None)
            if method == "post" and path in IDEMPOTENT_POSTS:
                op.setdefault("parameters", []).append({
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "a repeat with the same key and body within 24 h returns the first response "
                                   "and creates nothing; the same key with another body is `409 "
                                   "idempotency_conflict`",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
            if method == "post" and path == "/api/codes/import":
                op["requestBody"] = _import_body()
    schemas = doc.get("components", {}).get("schemas", {})
    removed = True
    while removed:  # Powertools' validation-error schemas refer to each other: drop them until none is unused
        removed = False
        for name in _UNUSED_IF_UNREFERENCED:
            others = {**doc, "components": {**doc["components"], "schemas": {
                k: v for k, v in schemas.items() if k != name}}}
            if name in schemas and f'"#/components/schemas/{name}"' not in json.dumps(others):
                del schemas[name]
                removed = True
    return doc


@app.get("/docs/openapi.json", include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    return finish_document(app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pipeline.handle(app, event, context)
