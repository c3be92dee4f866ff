"""Domain errors: each one is an error of docs/api.md (section 5).

Services and repositories raise these; they know nothing of HTTP. The api
layer (``qrpro.api.errors``: one table of statuses and headers) turns them into
the JSON envelope ``{"error": code, "message": ..., ...extra}``: every error
carries a ``message`` for people (docs/api.md section 5), the class's default
one unless the raise site says something more precise.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "internal"
    default_message: str = "Something went wrong on our side: retry, and quote the request_id if it persists."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.default_message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, **self.extra}
        out.setdefault("message", self.message)
        return out


class ValidationFailed(DomainError):
    code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)
        self.extra["message"] = message


class NotSignedIn(DomainError):
    code = "not_signed_in"
    default_message = "Send an Authorization: Bearer <api key> header."


class InvalidApiKey(DomainError):
    code = "invalid_api_key"
    default_message = "This API key is unknown or revoked: use a live key (qrpro admin create-key makes one)."


class PlanLimitReached(DomainError):
    code = "plan_limit"
    default_message = "Your plan's code limit is reached: pause or delete a code, or upgrade the plan."

    def __init__(self, plan: str, limit: int, current: int) -> None:
        super().__init__(None, plan=plan, limit=limit, current=current)


class PlanExpired(DomainError):
    code = "plan_expired"
    default_message = "Your plan has expired: renew it to use the API (you can still export your data)."

    def __init__(self, plan: str) -> None:
        super().__init__(None, plan=plan)


class InsufficientPlan(DomainError):
    code = "insufficient_plan"
    default_message = "Your plan does not include this: upgrade to the required plan."

    def __init__(self, plan: str, required: str) -> None:
        super().__init__(None, plan=plan, required=required)


class InsufficientRole(DomainError):
    code = "insufficient_role"
    default_message = "Your team role cannot change this: ask a team admin or owner."

    def __init__(self, role: str, required: str = "admin") -> None:
        super().__init__(None, role=role, required=required)


class NotFound(DomainError):
    code = "not_found"
    default_message = "Nothing here: check the path and the id (objects of other accounts are never visible)."


class MethodNotAllowed(DomainError):
    code = "method_not_allowed"
    default_message = "This path does not take this method: see GET /docs for the methods it takes."


class CodeNotEditable(DomainError):
    code = "code_not_editable"
    default_message = "This code is in grace or expired: reactivate it before editing."

    def __init__(self, status: str) -> None:
        super().__init__(None, status=status)


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    default_message = "This Idempotency-Key was already used with another request: use a new key."


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    default_message = "The body is too large: send at most 1 MiB (an import takes at most 1,000 codes)."


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    default_message = "Send the body as Content-Type: application/json."


class RateLimited(DomainError):
    code = "rate_limited"
    default_message = "This key has spent its daily request budget: retry after retry_at (see Retry-After)."

    def __init__(self, retry_at: int, now: int, limit: int) -> None:
        super().__init__(None, window="day", retry_at=retry_at)
        self.retry_after = max(0, retry_at - now)
        self.limit = limit


class ServiceUnavailable(DomainError):
    """A dependency is throttling or down; nothing was written. Safe to retry."""

    code = "unavailable"
    default_message = "A dependency is busy and nothing was written: retry in a moment."


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    return [cls] + [s for sub in cls.__subclasses__() for s in _subclasses(sub)]


# Each error code's default `message` (the gateway responses in infra/ and the tests use it).
MESSAGES: dict[str, str] = {cls.code: cls.default_message for cls in _subclasses(DomainError)}
