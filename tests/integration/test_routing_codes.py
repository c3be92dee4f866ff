"""The ``routing`` object on codes (docs/api.md 6.11) through the real pipeline against DynamoDB Local:
create, PATCH (replace, null clears), history, import (JSON and the export's codes.csv), validation errors,
the SHORT# item the redirect reads (compact JSON text, absent without routing) and the aggregator's
``scans_total`` surviving a PATCH."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import av, key, table
from tests.integration.test_export import _unzip, s3  # noqa: F401 - s3 is a fixture

URL = "https://example.com/landing"
ROUTING: dict[str, Any] = {
    "starts_at": 1767225600, "expires_at": 1769904000, "max_scans": 10000,
    "fallback_url": "https://example.com/campaign-ended",
    "rules": [{"if": {"country": ["de", "AT"]}, "url": "https://bücher.example/ß?q=ü"},
              {"if": {"os": ["ios"], "from": 1767225600, "until": 1767830400},
               "url": "https://apps.apple.com/app/id1"}],
    "split": [{"url": "https://example.com/a", "weight": 30}, {"url": "https://example.com/b", "weight": 70}],
    "utm": {"source": "qr", "campaign": "spring sale ✓"},
}
# As stored and returned: countries upper case, URLs in their ASCII form.
STORED: dict[str, Any] = {
    **ROUTING,
    "rules": [{"if": {"country": ["DE", "AT"]}, "url": "https://xn--bcher-kva.example/%C3%9F?q=%C3%BC"},
              ROUTING["rules"][1]],
}


def raw_item(pk: str, sk: str) -> dict[str, Any]:
    """The item as DynamoDB holds it (attribute types visible)."""
    return dict(ddb().get_item(TableName=table(), Key=key(pk, sk), ConsistentRead=True).get("Item", {}))


def short_item(code: dict[str, Any]) -> dict[str, Any]:
    return raw_item(k.pk_short(code["shortcode"]), "SHORT")


def create(api: Any, token: str, **fields: Any) -> Any:
    return api.request("POST", "/api/codes", token, json={"url": URL, **fields})


def patch(api: Any, token: str, code_id: str, body: dict[str, Any]) -> Any:
    return api.request("PATCH", f"/api/codes/{code_id}", token, json=body)


def test_create_stores_routing_normalised_on_the_code_and_its_shortcode_item(api: Any, make_account: Any) -> None:
    acct = make_account()
    r = create(api, acct.token, routing=ROUTING)
    assert r.status == 201, r.body
    code = r.json()
    assert code["routing"] == STORED
    assert api.request("GET", f"/api/codes/{code['id']}", acct.token).json()["routing"] == STORED
    listed = api.request("GET", "/api/codes", acct.token).json()["codes"]
    assert [c["routing"] for c in listed] == [STORED]
    # The storage contract: a String attribute of compact JSON on both items (never a map: Decimals).
    expected = {"S": json.dumps(STORED, separators=(",", ":"))}
    assert short_item(code)["routing"] == expected
    assert raw_item(code_scope(acct), k.sk_code(code["id"]))["routing"] == expected


def code_scope(acct: Any) -> str:
    return str(acct.caller().scope)


def test_without_routing_the_attribute_is_absent_and_the_object_null(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token).json()
    assert code["routing"] is None
    assert "routing" not in short_item(code)
    assert "routing" not in raw_item(code_scope(acct), k.sk_code(code["id"]))
    code = create(api, acct.token, routing=None).json()
    assert code["routing"] is None and "routing" not in short_item(code)


def test_routing_may_be_sent_as_its_json_text(api: Any, make_account: Any) -> None:
    r = create(api, make_account().token, routing=json.dumps(ROUTING))
    assert r.status == 201, r.body
    assert r.json()["routing"] == STORED


def test_patch_replaces_the_whole_routing_null_clears_it_and_history_records_both(
        api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token, routing=ROUTING).json()
    new = {"expires_at": 1769904000, "fallback_url": "https://example.com/ended"}
    r = patch(api, acct.token, code["id"], {"routing": new})
    assert r.status == 200, r.body
    assert r.json()["routing"] == new  # replaced, not merged: no rules, split or utm left
    assert json.loads(short_item(code)["routing"]["S"]) == new
    r = patch(api, acct.token, code["id"], {"routing": None})
    assert r.status == 200 and r.json()["routing"] is None
    assert "routing" not in short_item(code)
    assert "routing" not in raw_item(code_scope(acct), k.sk_code(code["id"]))
    history = api.request("GET", f"/api/codes/{code['id']}/history", acct.token).json()["history"]
    assert [(h["field"], h["from"], h["to"]) for h in history] == [
        ("routing", new, None), ("routing", STORED, new), ("created", None, URL)]


def test_a_patch_that_leaves_routing_alone_keeps_it_and_writes_no_history(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token, routing=ROUTING).json()
    r = patch(api, acct.token, code["id"], {"label": "renamed", "url": "https://example.com/new"})
    assert r.status == 200 and r.json()["routing"] == STORED
    assert json.loads(short_item(code)["routing"]["S"]) == STORED
    r = patch(api, acct.token, code["id"], {"routing": ROUTING})  # the same object again: no change
    assert r.status == 200
    history = api.request("GET", f"/api/codes/{code['id']}/history", acct.token).json()["history"]
    assert [h["field"] for h in history] == ["url", "created"]


def test_patch_keeps_the_aggregators_scans_total_on_the_shortcode_item(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token).json()
    pk = k.pk_short(code["shortcode"])
    ddb().update_item(TableName=table(), Key=key(pk, "SHORT"), UpdateExpression="ADD scans_total :n",
                      ExpressionAttributeValues={":n": av(41)})
    for body in ({"routing": {"max_scans": 50}}, {"url": "https://example.com/new"}, {"status": "paused"},
                 {"routing": None}, {"status": "active"}):
        assert patch(api, acct.token, code["id"], body).status == 200, body
        assert short_item(code)["scans_total"] == {"N": "41"}, body
    assert api.request("DELETE", f"/api/codes/{code['id']}", acct.token).status == 200
    item = short_item(code)
    assert item["scans_total"] == {"N": "41"} and item["status"] == {"S": "grace"} and "grace_until" in item
    assert api.request("POST", f"/api/codes/{code['id']}/reactivate", acct.token).status == 200
    item = short_item(code)
    assert item["scans_total"] == {"N": "41"} and "grace_until" not in item
    assert item["url"] == {"S": "https://example.com/new"} and item["code_id"] == {"S": code["id"]}


@pytest.mark.parametrize(("routing", "field"), [
    ({"rules": [{"if": {"os": ["ios"]}, "url": "https://aqr.net/abc"}]}, "routing.rules[0].url"),
    ({"split": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://AQR.NET./x", "weight": 50}]},
     "routing.split[1].url"),
    ({"expires_at": 2, "fallback_url": "javascript:alert(1)"}, "routing.fallback_url"),
    ({"rules": [{"if": {"os": ["windows"]}, "url": "https://example.com/"}]}, "routing.rules[0].if.os[0]"),
    ({"rules": [{"if": {"os": ["ios"], "colour": "red"}, "url": "https://example.com/"}]},
     "routing.rules[0].if.colour"),
    ({"split": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/b", "weight": 40}]},
     "routing.split"),
    ({"starts_at": 10, "expires_at": 10}, "routing.expires_at"),
    ({"max_scans": 0}, "routing.max_scans"),
    ({}, "routing"),
    ("not json", "routing"),
])
def test_bad_routing_is_400_naming_the_path_and_writes_nothing(api: Any, make_account: Any, routing: Any,
                                                               field: str) -> None:
    acct = make_account()
    r = create(api, acct.token, routing=routing)
    body = r.json()
    assert (r.status, body["error"], body["field"]) == (400, "validation_error", field), body
    assert api.request("GET", "/api/codes", acct.token).json()["codes"] == []
    code = create(api, acct.token, routing={"max_scans": 5}).json()
    r = patch(api, acct.token, code["id"], {"routing": routing})
    assert (r.status, r.json()["field"]) == (400, field), r.body
    assert api.request("GET", f"/api/codes/{code['id']}", acct.token).json()["routing"] == {"max_scans": 5}
    r = api.request("POST", "/api/codes/import", acct.token, json=[{"url": URL}, {"url": URL, "routing": routing}])
    assert (r.status, r.json()["field"]) == (400, field.replace("routing", "codes[1].routing", 1)), r.body
    assert len(api.request("GET", "/api/codes", acct.token).json()["codes"]) == 1


def test_a_redirect_loop_in_routing_names_its_message(api: Any, make_account: Any) -> None:
    r = create(api, make_account().token, routing={"rules": [{"if": {"os": ["ios"]}, "url": "https://aqr.net/x"}]})
    assert r.json()["message"] == "must not point at the short-link domain (redirect loop)"


def test_json_import_takes_routing(api: Any, make_account: Any) -> None:
    acct = make_account()
    r = api.request("POST", "/api/codes/import", acct.token,
                    json={"codes": [{"url": URL, "routing": ROUTING}, {"url": URL}]})
    assert r.status == 201, r.body
    assert [c["routing"] for c in r.json()["codes"]] == [STORED, None]
    assert json.loads(short_item(r.json()["codes"][0])["routing"]["S"]) == STORED


def test_codes_csv_round_trips_routing_losslessly(api: Any, s3: Any, make_account: Any) -> None:  # noqa: F811
    source, target = make_account(), make_account()
    create(api, source.token, routing=ROUTING, label="routed")
    create(api, source.token, label="plain")
    r = api.request("GET", "/api/user/export", source.token)
    assert r.status == 200, r.body
    text = _unzip(r.body)["codes.csv"]
    rows = cells(text)
    assert json.loads(rows["routed"]) == STORED and rows["plain"] == ""
    r = api.request("POST", "/api/codes/import", target.token, body=text.encode("utf-8"),
                    headers={"Content-Type": "text/csv"})
    assert r.status == 201, r.body
    imported = {c["label"]: c["routing"] for c in r.json()["codes"]}
    assert imported == {"routed": STORED, "plain": None}
    assert cells(_unzip(api.request("GET", "/api/user/export", target.token).body)["codes.csv"]) == rows


def cells(codes_csv: str) -> dict[str, str]:
    """The routing cell of each row of a codes.csv, by label."""
    return {row["label"]: row["routing"] for row in csv.DictReader(io.StringIO(codes_csv, newline=""))}


def test_a_bad_routing_cell_in_codes_csv_names_the_row(api: Any, make_account: Any) -> None:
    body = 'url,routing\r\nhttps://example.com/,\r\nhttps://example.com/,"{""max_scans"": -1}"\r\n'
    r = api.request("POST", "/api/codes/import", make_account().token, body=body.encode(),
                    headers={"Content-Type": "text/csv"})
    assert (r.status, r.json()["field"]) == (400, "codes[1].routing.max_scans"), r.body


def test_the_outbox_events_carry_routing_in_the_code_object(api: Any, make_account: Any) -> None:
    acct = make_account()
    code = create(api, acct.token, routing=ROUTING).json()
    patch(api, acct.token, code["id"], {"routing": None})
    events = [i for i in _scan_events() if i["data"]["code"]["id"] == code["id"]]
    by_type = {e["event_type"]: e["data"]["code"]["routing"] for e in events}
    assert by_type == {"code.created": STORED, "code.updated": None}


def _scan_events() -> list[dict[str, Any]]:
    from qrpro.data.table import from_item

    out = ddb().scan(TableName=table(), FilterExpression="#t = :e", ExpressionAttributeNames={"#t": "type"},
                     ExpressionAttributeValues={":e": av("event")})
    return [from_item(i) or {} for i in out["Items"]]
