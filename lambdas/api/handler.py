"""The API function: every `/api/*` route and the OpenAPI document.

The export route is included for the document (and works here too), but API
Gateway sends `GET /api/user/export` to the export function, which has the
memory, timeout and S3 permissions it needs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.api.routes import analytics, codes, groups, keys, qr, teams, user, webhooks
from qrpro.api import errors, export_routes, pipeline
from qrpro.api.router import Router

logger = Logger(service="qrpro-api")
metrics = Metrics(namespace="QRPro", service="qrpro-api")

reference = Router()


# The reference (lambdas/api/docs.py) is imported on first request of one of these routes only.
@reference.get("/docs/openapi.json", include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    from lambdas.api import docs

    return docs.document(ROUTERS)


@reference.get("/docs", include_in_schema=False)
def docs_page() -> Response[str]:
    from lambdas.api import docs

    return docs.page(app)


@reference.get("/docs/init.js", include_in_schema=False)
def docs_init() -> Response[str]:
    from lambdas.api import docs

    return docs.init_js()


@reference.get("/docs/swagger-ui.css", include_in_schema=False)
def docs_css() -> Response[str]:
    from lambdas.api import docs

    return docs.asset("swagger-ui.css")


@reference.get("/docs/swagger-ui-bundle.js", include_in_schema=False)
def docs_js() -> Response[str]:
    from lambdas.api import docs

    return docs.asset("swagger-ui-bundle.js")


@reference.get("/", include_in_schema=False)
def home() -> Response[str]:
    from lambdas.api import docs

    return docs.root(app)


# Static paths (/api/codes/import) are matched before parameterised ones.
ROUTERS = (*(area.router for area in (codes, qr, analytics, groups, teams, user, keys, webhooks)),
           export_routes.make_router(), reference)
app = APIGatewayRestResolver(enable_validation=True)
for router in ROUTERS:
    app.include_router(router)
errors.install(app, logger, ROUTERS)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pipeline.handle(app, event, context, logger)
