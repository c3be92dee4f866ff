"""Bad input on every operation: a clear 4xx in the contract's envelope, never
a 500, and nothing written."""

from __future__ import annotations

import re
from typing import Any

import pytest

from qrpro.data.aws import ddb
from qrpro.data.table import table

BAD_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"{url: nope"),
    ("wrong type", b'["https://example.com"]'),
    ("number", b"42"),
    ("deep nesting", b"[" * 50_000 + b"]" * 50_000),
    ("huge string", b'{"url": "https://example.com/' + b"a" * 600_000 + b'"}'),
    ("invalid utf-8", b'{"url": "https://example.com/\xc3\x28"}'),
    ("null", b"null"),
    ("nested wrong types", b'{"url": {"a": [1, 2]}, "label": 7, "status": ["active"]}'),
]
ODD_IDS = ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "x" * 2000, "00000000-0000-0000-0000-000000000000", "%00", "'; --"]


def operations() -> list[tuple[str, str]]:
    from lambdas.api.handler import openapi_document

    return [(method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item
            if method in {"get", "post", "patch", "delete"}]


def item_count() -> int:
    return int(ddb().scan(TableName=table(), Select="COUNT")["Count"])


def envelope(r: Any) -> dict[str, Any]:
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), r.body
    return body


@pytest.mark.parametrize(("what", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_on_every_mutating_operation(api: Any, make_account: Any, what: str, body: bytes) -> None:
    acct = make_account("team")
    api.request("GET", "/api/user", acct.token)  # settle the day's rate counter item
    before = item_count()
    for method, path in operations():
        if method not in {"POST", "PATCH"}:
            continue
        concrete = re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)
        r = api.request(method, concrete, acct.token, body=body, headers={"Content-Type": "application/json"})
        assert 400 <= r.status < 500, (method, path, what, r.status, r.body[:200])
        envelope(r)
    assert item_count() == before


@pytest.mark.parametrize("odd", ODD_IDS)
def test_odd_path_ids_are_404_on_every_operation(api: Any, make_account: Any, odd: str) -> None:
    acct = make_account("team")
    for method, path in operations():
        if "{" not in path:
            continue
        concrete = re.sub(r"\{[^}]+\}", odd, path)
        body = {} if method in {"POST", "PATCH"} else None
        r = api.request(method, concrete, acct.token, json=body)
        assert r.status in {400, 404, 405}, (method, concrete[:80], r.status, r.body[:200])
        envelope(r)


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "limit=100000", "status=deleted", "range=10y",
                                   "granularity=minute", "format=gif", "scale=0", "scale=999", "border=-3",
                                   "cursor=%00%01", "delivery=email"])
def test_bad_query_values_are_400_naming_the_parameter(api: Any, make_account: Any, query: str) -> None:
    acct = make_account("team")
    code = api.request("POST", "/api/codes", acct.token, json={"url": "https://example.com"}).json()
    name = query.split("=")[0]
    paths = {"limit": "/api/codes", "status": "/api/codes", "cursor": "/api/codes", "range": "/api/analytics",
             "granularity": "/api/analytics", "format": f"/api/codes/{code['id']}/qr",
             "scale": f"/api/codes/{code['id']}/qr", "border": f"/api/codes/{code['id']}/qr",
             "delivery": "/api/user/export"}
    r = api.request("GET", f"{paths[name]}?{query}", acct.token)
    assert r.status == 400, (query, r.body)
    assert envelope(r) == {"error": "validation_error", "field": name, "message": envelope(r)["message"]}


@pytest.mark.parametrize("header", ["Bearer \u00e9\u00e8", "Bearer " + "a" * 10_000, "Bearer abnd_qrpro_\x7f",
                                    "bearer abnd_qrpro_" + "A" * 43 + " extra"])
def test_odd_authorization_headers_are_401(api: Any, header: str) -> None:
    r = api.request("GET", "/api/user", headers={"Authorization": header})
    assert r.status == 401 and envelope(r)["error"] in {"not_signed_in", "invalid_api_key"}
