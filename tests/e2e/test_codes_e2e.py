"""The code lifecycle over real HTTP on `qrpro local`."""

from __future__ import annotations

from typing import Any

from qrpro.domain.errors import MESSAGES
from tests.e2e.conftest import Stack


def test_code_lifecycle_over_http(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    r = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/a", "label": "print run"})
    assert r.status == 201, r.body
    code: dict[str, Any] = r.json()
    assert code["short_url"] == f"{stack.redirect_url}/{code['shortcode']}"
    assert r.headers["X-RateLimit-Remaining"] == "999"
    cid = code["id"]
    r = stack.api("PATCH", f"/api/codes/{cid}", key, json_body={"url": "https://example.com/b"})
    assert r.status == 200 and r.json()["url"] == "https://example.com/b"
    listing = stack.api("GET", "/api/codes", key).json()
    assert [c["id"] for c in listing["codes"]] == [cid] and listing["plan_limit"] == 500
    r = stack.api("DELETE", f"/api/codes/{cid}", key)
    assert r.json()["status"] == "grace" and r.json()["grace_until"] > code["created_at"]
    assert stack.api("PATCH", f"/api/codes/{cid}", key, json_body={"label": "x"}).json() == {
        "error": "code_not_editable", "status": "grace", "message": MESSAGES["code_not_editable"]}
    assert stack.api("POST", f"/api/codes/{cid}/reactivate", key).json()["status"] == "active"
    history = stack.api("GET", f"/api/codes/{cid}/history", key).json()["history"]
    assert [(h["field"], h["to"]) for h in history] == [
        ("status", "active"), ("status", "grace"), ("url", "https://example.com/b"),
        ("created", "https://example.com/a")]
    r = stack.api("POST", "/api/codes/import", key, json_body={"codes": [{"url": "https://example.com/1"},
                                                                         {"url": "https://example.com/2"}]})
    assert r.status == 201 and r.json()["count"] == 2
    ids = [c["id"] for c in r.json()["codes"]]
    r = stack.api("POST", "/api/codes/bulk", key, json_body={"ids": ids, "action": "pause"})
    assert r.json() == {"updated": ids, "failed": []}
    paused = stack.api("GET", "/api/codes?status=paused", key).json()["codes"]
    assert {c["id"] for c in paused} == set(ids)


def test_idempotent_create_over_http(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    headers = {"Idempotency-Key": "retry-me"}
    first = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/x"}, headers=headers)
    again = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/x"}, headers=headers)
    assert first.status == again.status == 201 and first.json()["id"] == again.json()["id"]
    assert len(stack.api("GET", "/api/codes", key).json()["codes"]) == 1
    clash = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/y"}, headers=headers)
    assert (clash.status, clash.json()["error"]) == (409, "idempotency_conflict")
    # a key out of bounds is the contract's 400 on the header, whatever its spelling, and creates nothing
    for name, value in (("Idempotency-Key", "k" * 256), ("idempotency-key", "")):
        bad = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/z"}, headers={name: value})
        assert (bad.status, bad.json()) == (400, {"error": "validation_error", "field": "Idempotency-Key",
                                                  "message": "must be 1 to 255 characters"}), bad.body
    assert len(stack.api("GET", "/api/codes", key).json()["codes"]) == 1


PER_REQUEST = {"x-request-id", "x-ratelimit-remaining", "date"}


def test_an_idempotent_replay_is_the_first_response_byte_for_byte(stack: Stack) -> None:
    """Issue 15: same status, same body bytes (key order, spacing), same headers in the same order
    (but the per-request id, the remaining budget and the date). Through the trailing-slash spelling too."""
    key = stack.account("business")["api_key"]
    for path, body in (("/api/codes", {"url": "https://example.com/é", "label": "L", "tag": "a,b"}),
                       ("/api/groups", {"name": "Print", "color": "#1A2B3C"}),
                       ("/api/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["code.deleted"]}),
                       ("/api/codes/import", {"codes": [{"url": "https://example.com/1"}]})):
        headers = {"Idempotency-Key": f"exact-{path}"}
        first = stack.api("POST", path, key, json_body=body, headers=headers)
        replays = [stack.api("POST", p, key, json_body=body, headers=headers) for p in (path, path + "/")]
        assert first.status == 201, first.body
        for again in replays:
            assert again.status == first.status and again.body == first.body, (path, again.body)
            assert [(k, v) for k, v in again.headers.items() if k.lower() not in PER_REQUEST] == [
                (k, v) for k, v in first.headers.items() if k.lower() not in PER_REQUEST], path
    assert len(stack.api("GET", "/api/codes", key).json()["codes"]) == 2
