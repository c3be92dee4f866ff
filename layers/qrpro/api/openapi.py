"""OpenAPI building blocks shared by every route: the error envelope schema
and the error responses each operation documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RATE_LIMIT_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": {"description": "The key's daily budget", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left today after this one", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Unix seconds of the next UTC midnight", "schema": {"type": "integer"}},
}


class ErrorBody(BaseModel):
    """The error envelope: a machine-readable `error` code plus context."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"error": "validation_error", "field": "url", "message": "must be an absolute http or https URL"}]})

    error: str = Field(description="machine-readable error code (contract section 5)")
    message: str | None = None
    field: str | None = Field(None, description="JSON path of the offending field (validation_error)")


_DESCRIPTIONS = {
    400: "validation_error: `field` and `message` name the problem",
    401: "not_signed_in (no bearer token) or invalid_api_key (not a live key)",
    402: "plan_limit (`plan`, `limit`, `current`) or plan_expired (`plan`)",
    403: "insufficient_plan (`plan`, `required`) or insufficient_role (`role`, `required`)",
    404: "not_found: missing, or not in the caller's scope",
    405: "method_not_allowed",
    409: "code_not_editable (`status`) or idempotency_conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited (`window`, `retry_at`; `Retry-After` header in seconds)",
    500: "internal (`request_id`; never a stack trace)",
    503: "unavailable: a dependency is busy; nothing was written, retry",
}
ALWAYS = (401, 402, 403, 429, 500)


def errors(*statuses: int) -> dict[int, Any]:
    """The error responses of an operation: the ones every authenticated
    operation can give, plus ``statuses``."""
    out: dict[int, Any] = {}
    for status in sorted(set(ALWAYS) | set(statuses)):
        headers = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}} if status == 429 else {}
        out[status] = {"description": _DESCRIPTIONS[status], "headers": headers,
                       "content": {"application/json": {"model": ErrorBody}}}
    return out
