"""The one place that turns exceptions into the API's error envelope."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from qrpro.domain.errors import ApiError, MethodNotAllowed, NotFound

JSON = "application/json; charset=utf-8"


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON, body=body, headers=headers or {})


def error_response(err: ApiError) -> Response:
    return json_response(err.status, err.body(), err.headers())


def internal_error(request_id: str) -> Response:
    return json_response(500, {"error": "internal", "message": ApiError.default_message, "request_id": request_id})


def field_path(loc: Any) -> str:
    """Pydantic's error location as the API's JSON path: ``codes[3].url``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not isinstance(part, str) or part.startswith(("function-", "union[")):
            continue
        else:
            out += ("." if out else "") + part
    return out or "body"


def _validation_message(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown field"
    if err.get("type") == "json_invalid":
        return "the body is not valid JSON"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def install(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Register the exception handlers on a resolver; unhandled errors go to the
    function's ``logger`` (the one carrying the Lambda context)."""

    @app.exception_handler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    def _invalid(err: RequestValidationError) -> Response:
        errors = list(err.errors())
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        return json_response(400, {"error": "validation_error", "field": field_path(first.get("loc", ())),
                                   "message": _validation_message(first)})

    @app.not_found
    def _not_found(_: NotFoundError) -> Response:
        event = app.current_event
        path = event.path
        routes = app._static_routes + app._dynamic_routes
        if any(r.rule.match(path) for r in routes if r.method != event.http_method.upper()):
            return error_response(MethodNotAllowed())
        return error_response(NotFound())

    @app.exception_handler(Exception)
    def _unhandled(err: Exception) -> Response:
        request_id = app.current_event.request_context.request_id or ""
        logger.exception("unhandled error", extra={"request_id": request_id})
        return internal_error(request_id)
