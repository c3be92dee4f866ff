"""The ``routing`` object on codes over real HTTP on `qrpro local` (docs/api.md 6.11): set on create, read
back, replaced and cleared by PATCH, in history; a routing URL at the stack's own redirect origin is a
400 naming its path."""

from __future__ import annotations

from tests.e2e.conftest import Stack

ROUTING = {
    "expires_at": 4_000_000_000, "fallback_url": "https://example.com/ended",
    "rules": [{"if": {"country": ["de"], "os": ["ios"]}, "url": "https://exämple.de/"}],
    "split": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/b", "weight": 50}],
    "utm": {"source": "qr"},
}
STORED = {**ROUTING, "rules": [{"if": {"country": ["DE"], "os": ["ios"]}, "url": "https://xn--exmple-cua.de/"}]}


def test_routing_on_a_code_over_http(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    r = stack.api("POST", "/api/codes", key, json_body={"url": "https://example.com/", "routing": ROUTING})
    assert r.status == 201, r.body
    code = r.json()
    assert code["routing"] == STORED
    assert stack.api("GET", f"/api/codes/{code['id']}", key).json()["routing"] == STORED

    r = stack.api("PATCH", f"/api/codes/{code['id']}", key, json_body={"routing": None})
    assert r.status == 200 and r.json()["routing"] is None
    history = stack.api("GET", f"/api/codes/{code['id']}/history", key).json()["history"]
    assert [(h["field"], h["from"], h["to"]) for h in history] == [
        ("routing", STORED, None), ("created", None, "https://example.com/")]

    loop = {"max_scans": 10, "fallback_url": f"{stack.redirect_url}/{code['shortcode']}"}
    r = stack.api("PATCH", f"/api/codes/{code['id']}", key, json_body={"routing": loop})
    assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", "routing.fallback_url")
    assert stack.api("GET", f"/api/codes/{code['id']}", key).json()["routing"] is None
