"""Authentication, plans, exact rate limits and the error envelope through the
real authorizer and API handler, against DynamoDB Local."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from qrpro.data import accounts, ratelimit
from qrpro.domain.clock import next_midnight
from qrpro.domain.errors import MESSAGES, RateLimited
from qrpro.domain.scope import user_scope
from qrpro.services import keys as key_service


def test_user_with_rate_limit_headers(api: Any, make_account: Any) -> None:
    acct = make_account("business")
    r = api.request("GET", "/api/user", acct.token)
    assert r.status == 200, r.body
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    body = r.json()
    assert body["id"] == acct.user_id and body["plan"] == "business" and body["plan_status"] == "active"
    assert body["scope"] == {"type": "user"} and body["current_team_id"] is None
    assert body["limits"] == {"codes": 500, "requests_per_day": 1000, "scans_per_month": 1_000_000,
                              "retention_days": 730, "hourly_analytics": False}
    assert r.headers["X-RateLimit-Limit"] == "1000"
    assert r.headers["X-RateLimit-Remaining"] == "999"
    assert int(r.headers["X-RateLimit-Reset"]) == next_midnight(int(time.time()))
    assert api.request("GET", "/api/user", acct.token).headers["X-RateLimit-Remaining"] == "998"


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Token abc"])
def test_missing_or_non_bearer_auth_is_not_signed_in(api: Any, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = api.request("GET", "/api/user", headers=headers)
    assert (r.status, r.json()) == (401, {"error": "not_signed_in", "message": MESSAGES["not_signed_in"]})


@pytest.mark.parametrize("token", ["abnd_qrpro_" + "A" * 43, "nonsense", "abnd_qrpro_short"])
def test_unknown_or_malformed_key_is_invalid(api: Any, table: str, token: str) -> None:
    r = api.request("GET", "/api/user", token)
    assert (r.status, r.json()) == (401, {"error": "invalid_api_key", "message": MESSAGES["invalid_api_key"]})


def test_revocation_takes_effect_on_the_next_request(api: Any, make_account: Any) -> None:
    acct = make_account()
    assert api.request("GET", "/api/user", acct.token).status == 200
    key_service.revoke(acct.user_id, acct.key_id)
    r = api.request("GET", "/api/user", acct.token)
    assert (r.status, r.json()) == (401, {"error": "invalid_api_key", "message": MESSAGES["invalid_api_key"]})


def test_solo_plan_has_no_api(api: Any, make_account: Any) -> None:
    r = api.request("GET", "/api/user", make_account("solo").token)
    assert (r.status, r.json()) == (403, {"error": "insufficient_plan", "plan": "solo", "required": "business",
                                          "message": MESSAGES["insufficient_plan"]})
    assert "X-RateLimit-Limit" not in r.headers


def test_expired_plan_is_402_except_the_exempt_endpoints(api: Any, make_account: Any) -> None:
    acct = make_account("team")
    accounts.set_plan(user_scope(acct.user_id), None, "expired", int(time.time()))
    r = api.request("GET", "/api/codes", acct.token)
    assert (r.status, r.json()) == (402, {"error": "plan_expired", "plan": "team", "message": MESSAGES["plan_expired"]})
    assert r.headers["X-RateLimit-Limit"] == "10000"
    assert api.request("GET", "/api/user", acct.token).status == 200


def test_grace_plan_works_like_active(api: Any, make_account: Any) -> None:
    acct = make_account()
    accounts.set_plan(user_scope(acct.user_id), None, "grace", int(time.time()))
    r = api.request("GET", "/api/user", acct.token)
    assert r.status == 200 and r.json()["plan_status"] == "grace"


def test_over_budget_is_429_with_retry_after(api: Any, make_account: Any) -> None:
    acct = make_account()
    now = int(time.time())
    for _ in range(999):
        ratelimit.consume(acct.key_id, 1000, now)
    assert api.request("GET", "/api/user", acct.token).headers["X-RateLimit-Remaining"] == "0"
    r = api.request("GET", "/api/user", acct.token)
    body = r.json()
    assert r.status == 429 and body["error"] == "rate_limited" and body["window"] == "day"
    assert body["retry_at"] == next_midnight(int(time.time()))
    assert 0 < int(r.headers["Retry-After"]) <= 86_400
    assert abs(int(r.headers["Retry-After"]) - (body["retry_at"] - int(time.time()))) <= 2
    assert r.headers["X-RateLimit-Remaining"] == "0"


def test_budget_is_exact_under_concurrency(make_account: Any) -> None:
    """20 concurrent requests at remaining = 5 let exactly 5 through."""
    acct = make_account()
    now = int(time.time())
    for _ in range(995):
        ratelimit.consume(acct.key_id, 1000, now)

    def one(_: int) -> bool:
        try:
            ratelimit.consume(acct.key_id, 1000, now)
            return True
        except RateLimited:
            return False

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert results.count(True) == 5
    assert ratelimit.used_today(acct.key_id, now) == 1000


def test_unknown_path_and_wrong_method(api: Any, make_account: Any) -> None:
    token = make_account().token
    r = api.request("GET", "/api/nothing-here", token)
    assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]})
    r = api.request("DELETE", "/api/user", token)
    assert (r.status, r.json()) == (405, {"error": "method_not_allowed", "message": MESSAGES["method_not_allowed"]})
    assert r.headers["X-RateLimit-Limit"] == "1000"


def test_wrong_content_type_is_415_and_oversize_is_413(api: Any, make_account: Any) -> None:
    token = make_account().token
    r = api.request("POST", "/api/codes", token, body=b"url=https://example.com",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.json()["error"]) == (415, "unsupported_media_type")
    r = api.request("POST", "/api/codes", token, body=b"{}")
    assert (r.status, r.json()["error"]) == (415, "unsupported_media_type")
    big = b'{"url": "https://example.com", "label": "' + b"x" * (1024 * 1024) + b'"}'
    r = api.request("POST", "/api/codes", token, body=big, headers={"Content-Type": "application/json"})
    assert (r.status, r.json()["error"]) == (413, "payload_too_large")


def test_invalid_utf8_is_a_validation_error(api: Any, make_account: Any) -> None:
    r = api.request("POST", "/api/codes", make_account().token, body=b'{"url": "\xff\xfe"}',
                    headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["error"] == "validation_error"


def test_unhandled_error_is_500_internal_without_trace(api: Any, make_account: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdas.api.routes import user

    token = make_account().token

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals at /var/task/x.py line 3")

    monkeypatch.setattr(user, "caller", boom)
    r = api.request("GET", "/api/user", token)
    body = r.json()
    assert r.status == 500 and body["error"] == "internal" and body["request_id"]
    assert b"Traceback" not in r.body and b"secret internals" not in r.body


def test_openapi_document_needs_no_auth(api: Any) -> None:
    r = api.request("GET", "/docs/openapi.json")
    assert r.status == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/api/user" in doc["paths"]
