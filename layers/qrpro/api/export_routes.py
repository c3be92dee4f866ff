"""GET /api/user/export (docs/api.md section 11): served by the export function
(its own Lambda: bigger memory and timeout), documented in the API's OpenAPI
document like every other operation."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field

from qrpro.api.context import caller, now
from qrpro.api.errors import JSON
from qrpro.api.openapi import Documented, errors
from qrpro.api.router import Router


class ExportLink(Documented):
    """Where to download the export ZIP."""

    url: str = Field(description="presigned S3 URL of the ZIP, valid 15 minutes")
    expires_at: int = Field(description="unix seconds after which the URL no longer works")


RESPONSES: dict[int, Any] = {
    200: {"description": "The export: the ZIP itself (`application/zip`, small exports), or with "
                         "`delivery=url` a link to it (`application/json`)",
          "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}},
                      "application/json": {"model": ExportLink}}},
    303: {"description": "A large export: `Location` is a presigned S3 URL of the ZIP, valid 15 minutes "
                         "(the body repeats it as `url` and `expires_at`)",
          "headers": {"Location": {"description": "presigned S3 URL", "schema": {"type": "string"}}},
          "content": {"application/json": {"model": ExportLink}}},
    **errors(400),
}


def make_router() -> Router:
    """A fresh router per resolver: a Powertools router reads the request
    context of the resolver that included it last, and both the export and the
    api functions include this route (the latter for the OpenAPI document)."""
    router = Router()

    @router.get("/api/user/export", operation_id="exportData",
                tags=["User and keys"], summary="Export every code and the daily scan rollup (ZIP)",
                description="A ZIP of `codes.csv` (every code, grace and expired included), `scans.csv` (one "
                            "row per code and day), `scans_by_country.csv` and `scans_by_device.csv` (the breakdowns, "
                            "countries under the noise floor as `Other`; each file's `scans` sums to the same total) "
                            "and `README.txt`, built and stored in S3. Small exports come back inline, large "
                            "ones as `303` to a presigned URL (15 minutes); `delivery=url` always answers with the "
                            "URL. Also available to expired accounts.",
                responses=RESPONSES)
    def get_export(delivery: Annotated[Literal["url"] | None, Query(
            description="`url`: answer `200 {url, expires_at}` instead of the file")] = None):
        # No return annotation on purpose: Powertools would validate (and re-serialise) the ZIP bytes against it.
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

    return router
