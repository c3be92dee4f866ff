"""The API function: every `/api/*` route and the OpenAPI document.

The export route is included for the document (and works here too), but API
Gateway sends `GET /api/user/export` to the export function, which has the
memory, timeout and S3 permissions it needs.

Route modules load with the first request that needs them, by the path's area
(`/api/{area}/...`, :data:`AREAS`): a cold start pays for its own routes and
their repositories, not for every route's (docs/performance.md, "Cold
starts"). What every request needs (Powertools' resolver, its validation and
pydantic, the pipeline) loads at init.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from qrpro.api import errors, export_routes, pipeline
from qrpro.api.router import Router

logger = Logger(service="qrpro-api")
metrics = Metrics(namespace="QRPro", service="qrpro-api")

reference = Router()


# The reference (lambdas/api/docs.py) is imported on first request of one of these routes only.
@reference.get("/docs/openapi.json", include_in_schema=False)
def openapi_document() -> dict[str, Any]:
    from lambdas.api import docs

    return docs.document(routers())


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


# The route modules (lambdas/api/routes/), in the document's order, and the ones each area of /api needs.
MODULES = ("codes", "qr", "analytics", "groups", "teams", "user", "keys", "webhooks")
AREAS: dict[str, tuple[str, ...]] = {
    "codes": ("codes", "qr", "analytics"), "analytics": ("analytics",), "groups": ("groups", "analytics"),
    "teams": ("teams",), "user": ("user",), "keys": ("keys",), "webhooks": ("webhooks",),
}

app = APIGatewayRestResolver(enable_validation=True)
EXPORT = export_routes.make_router()
ROUTERS: list[Router] = []  # the routers included so far: what the 405 check knows (errors.install)
_loaded: dict[str, Router] = {}
_lock = threading.Lock()


def _include(router: Router) -> None:
    app.include_router(router)
    ROUTERS.append(router)


def load(*areas: str) -> None:
    """Include the route modules of ``areas`` (once each)."""
    with _lock:
        for name in (name for area in areas for name in AREAS.get(area, ())):
            if name not in _loaded:
                _loaded[name] = importlib.import_module(f"lambdas.api.routes.{name}").router
                _include(_loaded[name])


def routers() -> list[Router]:
    """Every router, all areas loaded, in a fixed order: what the OpenAPI document describes."""
    load(*AREAS)
    return [*(_loaded[name] for name in MODULES), EXPORT, reference]


def area_of(path: str) -> str:
    """``codes`` for ``/api/codes/...``; "" for a path outside ``/api``."""
    parts = path.split("/", 3)
    return parts[2] if len(parts) > 2 and parts[1] == "api" else ""


_include(EXPORT)
_include(reference)
errors.install(app, logger, ROUTERS)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    load(area_of(str(event.get("path", "/"))))
    return pipeline.handle(app, event, context, logger)
