"""OpenAPI building blocks shared by every route: the error responses each
operation documents (their schema, ``ErrorBody``, is one of the response models,
``qrpro.api.models``: named here, loaded with the document only). Free of
pydantic, so the export function loads none (docs/performance.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

RATE_LIMIT_HEADERS: dict[str, Any] = {
    "X-RateLimit-Limit": {"description": "The key's daily budget", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left today after this one", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"description": "Unix seconds of the next UTC midnight", "schema": {"type": "integer"}},
}


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
ALWAYS = (401, 402, 403, 429, 500, 503)


def errors(*statuses: int, ok: type[BaseModel] | str | None = None, ok_status: int = 200,
           ok_description: str = "OK") -> dict[int, Any]:
    """The responses of an operation: the success one when ``ok`` names its
    model (a class, or the name of one in ``qrpro.api.models``: loaded for the
    document only, ``qrpro.api.router``), the error ones every authenticated operation can give, plus
    ``statuses``. Every response to a metered request carries the rate-limit
    headers; a 401 never does (no key was identified)."""
    out: dict[int, Any] = {}
    if ok is not None:
        out[ok_status] = {"description": ok_description, "headers": dict(RATE_LIMIT_HEADERS),
                          "content": {"application/json": {"model": ok}}}
    for status in sorted(set(ALWAYS) | set(statuses)):
        headers = {} if status == 401 else dict(RATE_LIMIT_HEADERS)
        if status == 429:
            headers["Retry-After"] = {"schema": {"type": "integer"}, "description": "seconds until `retry_at`"}
        out[status] = {"description": _DESCRIPTIONS[status], "headers": headers,
                       "content": {"application/json": {"model": "ErrorBody"}}}
    return out
