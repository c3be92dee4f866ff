"""The API reference: the OpenAPI document (``GET /docs/openapi.json``), the
interactive page rendered from it (``GET /docs``, Swagger UI served by this
function: no CDN) and ``GET /`` pointing there. No auth (docs/api.md section 1).

Imported only when one of those routes is requested, so the API function's
cold start does not pay for it. ``python -m lambdas.api.docs`` prints the
document: ``make openapi`` writes it to docs/openapi.json.

Swagger UI comes from the npm package ``swagger-ui-dist`` (pinned in
package.json): ``infra/build_assets.py`` copies its two files into the api
function's asset (``lambdas/api/swagger_ui/``); in a checkout they are read
from ``node_modules/``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from qrpro.api.router import Router

HERE = Path(__file__).resolve().parent
ASSET_DIRS = (HERE / "swagger_ui", HERE.parents[1] / "node_modules" / "swagger-ui-dist")
ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"}
ASSET_CACHE = "public, max-age=3600"

_UNUSED_IF_UNREFERENCED = ("HTTPValidationError", "ValidationError", "ResponseValidationError")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>QR Pro API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{base}/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/docs/swagger-ui-bundle.js"></script>
<script src="{base}/docs/init.js"></script>
</body>
</html>
"""
# The page's "try it" calls go to the server that served it (local stack or deployed stage).
INIT_JS = """\
(function () {
  var base = window.location.pathname.replace(/\\/docs\\/?$/, "");
  fetch(base + "/docs/openapi.json").then(function (r) { return r.json(); }).then(function (spec) {
    spec.servers = [{ url: window.location.origin + base, description: "this server" }];
    window.ui = SwaggerUIBundle({
      spec: spec, dom_id: "#swagger-ui", deepLinking: true, displayOperationId: true,
      defaultModelsExpandDepth: 0, docExpansion: "list", persistAuthorization: false
    });
  });
})();
"""


def asset_dir() -> Path:
    for candidate in ASSET_DIRS:
        if (candidate / "swagger-ui-bundle.js").is_file():
            return candidate
    raise FileNotFoundError("Swagger UI assets missing: run `make install` (npm swagger-ui-dist)")


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
    """What the route declarations cannot say (everything else, the optional
    `Idempotency-Key` header included, is declared on the routes):

    - no operation ever answers 422: bad input is `400 validation_error`,
      documented per route; Powertools adds a 422 to every validated
      operation (and its `HTTPValidationError` schemas) with no option to
      leave it out;
    - the import body: `POST /api/codes/import` takes four shapes, JSON or
      `text/csv`, and reads its body itself (``qrpro.domain.imports``);
      Powertools documents one model under one media type per body
      parameter, and validating it there would refuse the CSV."""
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            op["responses"].pop("422", None)
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


def document(routers: Iterable[Any]) -> dict[str, Any]:
    """The document of ``routers``' routes, with the response models they name
    (``qrpro.api.router.Router.documented``): those, and Powertools' OpenAPI
    models (~100 ms of imports), load here, not at the api function's cold start."""
    from aws_lambda_powertools.event_handler.openapi.models import Contact, HTTPBearer, License, Server
    from pydantic import AnyUrl

    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router.documented() if isinstance(router, Router) else router)
    schema = app.get_openapi_schema(
        title="QR Pro API",
        version="1.0.0",
        summary="Dynamic QR codes: create, redirect, analyse, export.",
        description="The reference of the QR Pro API. The same text, with examples, is docs/api.md in the "
                    "repository. Authenticate with `Authorization: Bearer abnd_qrpro_<secret>`.",
        servers=[Server(url="https://pro.qr.abundera.ai", description="production"),
                 Server(url="http://127.0.0.1:3000", description="the local stack (`make local`)")],
        contact=Contact(name="QR Pro", url=AnyUrl("https://pro.qr.abundera.ai")),
        license_info=License(name="Proprietary", url=AnyUrl("https://pro.qr.abundera.ai/terms")),
        security_schemes={"bearer": HTTPBearer(bearerFormat="abnd_qrpro_<secret>")},
        security=[{"bearer": []}],
    )
    return finish_document(schema.model_dump(mode="json", by_alias=True, exclude_none=True))


def _base(app: APIGatewayRestResolver) -> str:
    """The stage prefix the client used (``/prod`` on an execute-api URL, empty on a custom domain or locally)."""
    event = app.current_event
    full = str(event.request_context.path or event.path)
    return full[: len(full) - len(event.path)] if full.endswith(event.path) else ""


def page(app: APIGatewayRestResolver) -> Response[str]:
    return Response(200, "text/html; charset=utf-8", PAGE.format(base=_base(app)), {"Cache-Control": "no-cache"})


def init_js() -> Response[str]:
    return Response(200, "text/javascript; charset=utf-8", INIT_JS, {"Cache-Control": ASSET_CACHE})


@cache
def _asset(name: str) -> str:
    return (asset_dir() / name).read_text(encoding="utf-8")


def asset(name: str) -> Response[str]:
    return Response(200, ASSETS[name], _asset(name), {"Cache-Control": ASSET_CACHE})


def root(app: APIGatewayRestResolver) -> Response[str]:
    base = _base(app)
    return Response(302, "application/json; charset=utf-8",
                    json.dumps({"docs": f"{base}/docs", "openapi": f"{base}/docs/openapi.json"},
                               separators=(",", ":")),
                    {"Location": f"{base}/docs"})


def main() -> int:
    from lambdas.api.handler import routers

    sys.stdout.write(json.dumps(document(routers()), indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
