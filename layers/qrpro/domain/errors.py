"""Domain errors: each one is an error of the contract (section 5).

Routes and data access raise these; one exception handler in the API function
turns them into the JSON envelope ``{"error": code, ...extra}``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status: int = 500
    code: str = "internal"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message or self.code)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code}
        out.update(self.extra)
        if self.message and "message" not in out:
            out["message"] = self.message
        return out

    def headers(self) -> dict[str, str]:
        return {}


class ValidationFailed(ApiError):
    status, code = 400, "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(None, field=field)
        self.extra["message"] = message


class NotSignedIn(ApiError):
    status, code = 401, "not_signed_in"


class InvalidApiKey(ApiError):
    status, code = 401, "invalid_api_key"


class PlanLimitReached(ApiError):
    status, code = 402, "plan_limit"

    def __init__(self, plan: str, limit: int, current: int) -> None:
        super().__init__(None, plan=plan, limit=limit, current=current)


class PlanExpired(ApiError):
    status, code = 402, "plan_expired"

    def __init__(self, plan: str) -> None:
        super().__init__(None, plan=plan)


class InsufficientPlan(ApiError):
    status, code = 403, "insufficient_plan"

    def __init__(self, plan: str, required: str) -> None:
        super().__init__(None, plan=plan, required=required)


class InsufficientRole(ApiError):
    status, code = 403, "insufficient_role"

    def __init__(self, role: str, required: str = "admin") -> None:
        super().__init__(None, role=role, required=required)


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class CodeNotEditable(ApiError):
    status, code = 409, "code_not_editable"

    def __init__(self, status: str) -> None:
        super().__init__(None, status=status)


class IdempotencyConflict(ApiError):
    status, code = 409, "idempotency_conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, retry_at: int, now: int, limit: int) -> None:
        super().__init__(None, window="day", retry_at=retry_at)
        self.retry_after = max(0, retry_at - now)
        self.limit = limit

    def headers(self) -> dict[str, str]:
        return {
            "Retry-After": str(self.retry_after),
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(self.extra["retry_at"]),
        }


class ServiceUnavailable(ApiError):
    """A dependency is throttling or down; nothing was written. Safe to retry."""

    status, code = 503, "unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}
