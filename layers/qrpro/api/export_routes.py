"""GET /api/user/export (docs/api.md section 11): served by the export function
(its own Lambda: bigger memory and timeout), documented in the API's OpenAPI
document like every other operation.

The export function runs its resolver without Powertools' request validation,
so that it loads no pydantic (~80 ms of every cold start, docs/performance.md):
its one parameter is checked here instead, with the same answer. The api
function registers the same operation with the parameter declared
(:func:`make_router`), which documents it.

No ``from __future__ import annotations`` here: the declared parameter's
annotation is evaluated where it is written, inside :func:`make_router`, so
only that function imports Powertools' ``Query`` (and with it pydantic).
"""

import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response

from qrpro.api.context import caller, now
from qrpro.api.errors import JSON
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.domain.errors import ValidationFailed

OPERATION: dict[str, Any] = {
    "rule": "/api/user/export", "method": "GET", "operation_id": "exportData", "tags": ["User and keys"],
    "summary": "Export every code and the daily scan rollup (ZIP)",
    "description": "A ZIP of `codes.csv` (every code, grace and expired included), `scans.csv` (one "
                   "row per code and day), `scans_by_country.csv`, `scans_by_device.csv`, `scans_by_os.csv` and "
                   "`scans_by_target.csv` (the breakdowns, under the noise floor as `Other`/`other`; each file's "
                   "`scans` sums to the same total) "
                   "and `README.txt`, built and stored in S3. Small exports come back inline, large "
                   "ones as `303` to a presigned URL (15 minutes); `delivery=url` always answers with the "
                   "URL. Also available to expired accounts.",
    "responses": {
        200: {"description": "The export: the ZIP itself (`application/zip`, small exports), or with "
                             "`delivery=url` a link to it (`application/json`)",
              "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}},
                          "application/json": {"model": "ExportLink"}}},
        303: {"description": "A large export: `Location` is a presigned S3 URL of the ZIP, valid 15 minutes "
                             "(the body repeats it as `url` and `expires_at`)",
              "headers": {"Location": {"description": "presigned S3 URL", "schema": {"type": "string"}}},
              "content": {"application/json": {"model": "ExportLink"}}},
        **errors(400),
    },
}


def _export(router: Router, delivery: str | None) -> Response[Any]:
    # The api function has this route for its document only: import on use.
    from qrpro.data.exports import CONTENT_TYPE
    from qrpro.services.export import export

    out = export(caller(router).scope, caller(router).plan, now(router))
    link = json.dumps({"url": out.url, "expires_at": out.expires_at}, separators=(",", ":"))
    headers = {"Cache-Control": "no-store"}
    if delivery == "url":
        return Response(200, JSON, link, headers)
    if out.body is not None:
        return Response(200, CONTENT_TYPE, out.body,
                        {**headers, "Content-Disposition": f'attachment; filename="{out.filename}"'})
    return Response(303, JSON, link, {**headers, "Location": out.url})


def make_router() -> Router:
    """The operation as the api function has it: ``delivery`` declared (so
    documented, and validated by Powertools). A fresh router per resolver: a
    Powertools router reads the request context of the resolver that included
    it last."""
    from aws_lambda_powertools.event_handler.openapi.params import Query

    router = Router()

    @router.route(**OPERATION)
    def get_export(delivery: Annotated[Literal["url"] | None, Query(
            description="`url`: answer `200 {url, expires_at}` instead of the file")] = None):
        # No return annotation on purpose: Powertools would validate (and re-serialise) the ZIP bytes against it.
        return _export(router, delivery)

    return router


def make_serving_router() -> Router:
    """The operation as the export function serves it, without Powertools'
    validation: ``delivery`` is read and checked here, with the answer
    Powertools gives for it (``400 validation_error`` on ``delivery``)."""
    router = Router()

    @router.route(**OPERATION)
    def get_export():
        delivery = router.current_event.get_query_string_value("delivery")
        if delivery not in (None, "url"):
            raise ValidationFailed("delivery", "Input should be 'url'")
        return _export(router, delivery)

    return router
