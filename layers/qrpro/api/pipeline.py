"""The request pipeline every API-facing function runs, in AWS and locally.

Order: authorizer context → caller (scope, plan, role) → plan gate → exact
daily budget → expired-plan gate → media type and size → route. The
rate-limit headers go on every response to a metered request, errors included.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from qrpro.api.errors import JSON, error_response, internal_error
from qrpro.data import accounts, ratelimit
from qrpro.domain.errors import (
    DomainError,
    InsufficientPlan,
    NotFound,
    NotSignedIn,
    PayloadTooLarge,
    PlanExpired,
    UnsupportedMediaType,
    ValidationFailed,
)

MAX_BODY_BYTES = 1024 * 1024
# No path segment of the API is longer than an id (36): anything far longer is
# no resource of ours, and must never reach a database key (defence in depth).
MAX_SEGMENT = 128
# The reference (docs/api.md section 1): no auth, no budget.
PUBLIC_ROUTES = {("GET", path) for path in ("/", "/docs", "/docs/openapi.json", "/docs/init.js",
                                            "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js")}
# An expired account keeps these: no lock-in (docs/api.md section 3).
EXEMPT_WHEN_EXPIRED = [
    ("GET", re.compile(r"^/api/user/?$")),
    ("GET", re.compile(r"^/api/user/export/?$")),
    ("GET", re.compile(r"^/api/keys/?$")),
    ("DELETE", re.compile(r"^/api/keys/[^/]+/?$")),
]
IMPORT = ("POST", "/api/codes/import")
CSV_ROUTES = {IMPORT}
# The one operation whose JSON body may be an array (contract 6.6); every other body is an object.
ARRAY_ROUTES = {IMPORT}


def _header(event: dict[str, Any], name: str) -> str | None:
    for source in (event.get("headers") or {}, event.get("multiValueHeaders") or {}):
        for key, value in source.items():
            if key.lower() == name:
                return value[0] if isinstance(value, list) and value else value
    return None


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body")
    if not body:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError as err:
            raise ValidationFailed("body", "the body is not valid base64") from err
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def check_body(event: dict[str, Any], method: str, path: str) -> None:
    """415 for a body that is not JSON (or CSV where accepted), 413 over 1 MiB.
    A base64-encoded body is decoded here so routes always get text."""
    raw = _body_bytes(event)
    if not raw:
        return
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge("the body is over 1 MiB")
    ctype = (_header(event, "content-type") or "").split(";")[0].strip().lower()
    if method in {"POST", "PATCH", "PUT"}:
        allowed = {"application/json"} | ({"text/csv"} if (method, path.rstrip("/")) in CSV_ROUTES else set())
        if ctype not in allowed:
            raise UnsupportedMediaType(f"send {' or '.join(sorted(allowed))}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValidationFailed("body", "the body is not valid UTF-8") from err
    if method in {"POST", "PATCH", "PUT"} and ctype == "application/json":
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:  # RecursionError: absurdly deep nesting
            raise ValidationFailed("body", "the body is not valid JSON") from err
        if not isinstance(data, dict) and (method, path.rstrip("/")) not in ARRAY_ROUTES:
            raise ValidationFailed("body", "the body must be a JSON object")
    event["body"], event["isBase64Encoded"] = text, False


def _set_headers(response: dict[str, Any], headers: dict[str, str]) -> None:
    multi = response.setdefault("multiValueHeaders", {})
    for name, value in headers.items():
        multi[name] = [value]
    if multi.get("Content-Type") == ["application/json"]:
        multi["Content-Type"] = [JSON]


def _build(err_response: Any) -> dict[str, Any]:
    body = json.dumps(err_response.body, separators=(",", ":"))  # compact, as every other answer
    return {"statusCode": err_response.status_code, "body": body, "isBase64Encoded": False,
            "multiValueHeaders": {"Content-Type": [err_response.content_type],
                                  **{k: [v] for k, v in err_response.headers.items()}}}


def handle(app: APIGatewayRestResolver, event: dict[str, Any], context: Any, logger: Logger,
           clock: Callable[[], float] = time.time) -> dict[str, Any]:
    now = int(clock())
    method = str(event.get("httpMethod", "GET")).upper()
    path = str(event.get("path", "/"))
    request_id = str((event.get("requestContext") or {}).get("requestId", ""))
    meter: dict[str, str] = {}
    app.clear_context()
    try:
        if (method, path) not in PUBLIC_ROUTES:
            auth = (event.get("requestContext") or {}).get("authorizer") or {}
            if not auth.get("user_id") or not auth.get("key_id"):
                raise NotSignedIn()
            caller = accounts.resolve_caller(str(auth["user_id"]), str(auth["key_id"]))
            if not caller.plan.api:
                raise InsufficientPlan(plan=caller.plan_name, required="business")
            budget = ratelimit.consume(caller.key_id, caller.plan.requests_per_day, now)
            meter = budget.headers()
            if caller.expired and not any(m == method and p.match(path) for m, p in EXEMPT_WHEN_EXPIRED):
                raise PlanExpired(plan=caller.plan_name)
            if any(len(segment) > MAX_SEGMENT for segment in path.split("/")):
                raise NotFound()
            check_body(event, method, path)
            app.append_context(caller=caller, now=now, budget=budget)
        response = app.resolve(event, context)
    except DomainError as err:
        response = _build(error_response(err))
    except Exception:
        logger.exception("unhandled error before routing", extra={"request_id": request_id})
        response = _build(internal_error(request_id))
    _set_headers(response, meter)
    return response

