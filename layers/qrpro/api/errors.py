"""The one place that turns exceptions into the API's error envelope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from qrpro.api.router import Router, methods_of
from qrpro.domain import errors as domain
from qrpro.domain.errors import DomainError, MethodNotAllowed, NotFound

JSON = "application/json; charset=utf-8"

# The HTTP status of every domain error (docs/api.md section 5): the only place that knows it.
STATUS: dict[type[DomainError], int] = {
    domain.ValidationFailed: 400,
    domain.NotSignedIn: 401,
    domain.InvalidApiKey: 401,
    domain.PlanLimitReached: 402,
    domain.PlanExpired: 402,
    domain.InsufficientPlan: 403,
    domain.InsufficientRole: 403,
    domain.NotFound: 404,
    domain.MethodNotAllowed: 405,
    domain.CodeNotEditable: 409,
    domain.IdempotencyConflict: 409,
    domain.PayloadTooLarge: 413,
    domain.UnsupportedMediaType: 415,
    domain.RateLimited: 429,
    domain.ServiceUnavailable: 503,
}


def status_of(err: DomainError) -> int:
    return next((STATUS[cls] for cls in type(err).__mro__ if cls in STATUS), 500)


def headers_of(err: DomainError) -> dict[str, str]:
    if isinstance(err, domain.RateLimited):
        return {"Retry-After": str(err.retry_after), "X-RateLimit-Limit": str(err.limit),
                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(err.extra["retry_at"])}
    if isinstance(err, domain.ServiceUnavailable):
        return {"Retry-After": "1"}
    return {}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=JSON, body=body, headers=headers or {})


def error_response(err: DomainError) -> Response:
    return json_response(status_of(err), err.body(), headers_of(err))


def internal_error(request_id: str) -> Response:
    return json_response(500, {"error": "internal", "message": DomainError.default_message, "request_id": request_id})


def field_path(loc: Any) -> str:
    """Pydantic's error location as the API's JSON path: ``codes[3].url``; a
    header by its usual spelling (Powertools lowercases header names):
    ``Idempotency-Key``."""
    parts = list(loc)
    if len(parts) == 2 and parts[0] == "header" and isinstance(parts[1], str):
        return "-".join(word.capitalize() for word in parts[1].split("-"))
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


def install(app: APIGatewayRestResolver, logger: Logger, routers: Iterable[Router]) -> None:
    """Register the exception handlers on a resolver: unhandled errors go to the
    function's ``logger`` (the one carrying the Lambda context); a path that
    one of ``routers`` serves under another method is 405."""

    @app.exception_handler(DomainError)
    def _api_error(err: DomainError) -> Response:
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
        if methods_of(routers, event.path) - {event.http_method.upper()}:
            return error_response(MethodNotAllowed())
        return error_response(NotFound())

    @app.exception_handler(Exception)
    def _unhandled(err: Exception) -> Response:
        request_id = app.current_event.request_context.request_id or ""
        logger.exception("unhandled error", extra={"request_id": request_id})
        return internal_error(request_id)
