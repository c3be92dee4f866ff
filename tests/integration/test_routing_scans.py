"""Routing at the redirect and its counting (docs/api.md section 14), against
DynamoDB Local and moto's SQS: the target each scan is counted under, the scan
limit's counter at the redirect (counted scans only, each once),
``by_target`` summing to ``total`` under the noise floor, ``max_scans``
handing over to the fallback.

Routed codes are set up by writing ``routing`` (the stored form, compact JSON)
on the code and SHORT# items, as the codes API stores it."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from lambdas.redirect import handler as redirect
from qrpro.data import edge
from qrpro.data import keys as k
from qrpro.data import table as tables
from qrpro.domain.clock import day_bucket
from qrpro.services import codes
from tests.helpers.scans import IPHONE, SLACK, WINDOWS, count, everything_sent, get, messages_for, scan

ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"


def set_routing(scope: str, code: dict[str, Any], routing: dict[str, Any] | None) -> None:
    """``routing`` on the code's item and its SHORT# projection (absent when None)."""
    client = boto3.client("dynamodb")
    for pk, sk in ((scope, k.sk_code(code["id"])), (k.pk_short(code["shortcode"]), "SHORT")):
        if routing is None:
            client.update_item(TableName=tables.table(), Key={"pk": {"S": pk}, "sk": {"S": sk}},
                               UpdateExpression="REMOVE routing")
        else:
            client.update_item(TableName=tables.table(), Key={"pk": {"S": pk}, "sk": {"S": sk}},
                               UpdateExpression="SET routing = :r", ExpressionAttributeValues={
                                   ":r": {"S": json.dumps(routing, separators=(",", ":"))}})
    redirect._cache.clear()


def routed_code(make_account: Any, routing: dict[str, Any], plan_name: str = "business") -> tuple[Any, dict[str, Any]]:
    acct = make_account(plan_name)
    code = codes.create(acct.caller(), {"url": "https://example.com/default"}, int(time.time()))
    set_routing(acct.caller().scope, code, routing)
    return acct, code


def limit_count(code: dict[str, Any]) -> int:
    """The redirect's scan-limit counter of the code."""
    return int(get(k.pk_limit(code["id"]), edge.LIMIT_SK).get("n", 0))


RULES = {"rules": [{"if": {"country": ["DE"]}, "url": "https://example.de/"},
                   {"if": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"}],
         "split": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/b", "weight": 50}]}


def test_each_scan_carries_and_is_counted_under_its_target(queue: str, make_account: Any) -> None:
    acct, code = routed_code(make_account, {**RULES, "utm": {"source": "qr"}})
    r = scan(code["shortcode"], WINDOWS, "DE")
    assert (r["statusCode"], r["headers"]["Location"]) == (302, "https://example.de/?utm_source=qr")
    assert r["headers"]["Cache-Control"] == "no-store"
    assert scan(code["shortcode"], IPHONE, "US")["headers"]["Location"] == \
        "https://apps.apple.com/app/id1?utm_source=qr"
    splits = {scan(code["shortcode"], ANDROID, "US")["headers"]["Location"] for _ in range(40)}
    assert splits == {"https://example.com/a?utm_source=qr", "https://example.com/b?utm_source=qr"}
    # HEAD and bots follow the routing but are not counted
    r = scan(code["shortcode"], IPHONE, "DE", method="HEAD")
    assert (r["statusCode"], r["headers"]["Location"]) == (302, "https://example.de/?utm_source=qr")
    msgs = everything_sent(queue)
    targets = [json.loads(m["Body"])["t"] for m in msgs]
    assert targets[:2] == ["rule:0", "rule:1"] and set(targets[2:]) == {"split:0", "split:1"} and len(targets) == 42

    assert count(msgs) == []
    day = get(k.pk_code_agg(code["id"]), k.sk_day(day_bucket(int(time.time()))))
    assert day["total"] == 42 and day["t_rule:0"] == 1 and day["t_rule:1"] == 1
    assert day["t_split:0"] + day["t_split:1"] == 40
    scope_day = get(k.pk_scope_agg(acct.caller().scope), k.sk_day(day_bucket(int(time.time()))))
    assert scope_day["t_rule:0"] == 1  # the scope's aggregate too (7.2)


def test_the_limit_counts_counted_scans_once_and_analytics_stay_exact_under_redelivery(
        queue: str, make_account: Any) -> None:
    _, code = routed_code(make_account, {**RULES, "max_scans": 1000})
    for _ in range(25):
        scan(code["shortcode"], WINDOWS, "FR")
    scan(code["shortcode"], SLACK, "FR")  # a bot and a HEAD follow the routing and take no place
    scan(code["shortcode"], WINDOWS, "FR", method="HEAD")
    assert limit_count(code) == 25
    msgs = everything_sent(queue)
    assert count(msgs[:10]) == []
    assert count(msgs) == []  # the first ten again
    assert count([*msgs[5:20], {"MessageId": "dup", "Body": msgs[0]["Body"]}]) == []
    assert get(k.pk_code_agg(code["id"]), k.sk_day(day_bucket(int(time.time()))))["total"] == 25
    assert limit_count(code) == 25  # counting never touches the limit: the redirect keeps it


def test_old_messages_without_target_or_shortcode_count_as_default(table: str) -> None:
    msgs = messages_for("code-old", 3)
    for m in msgs:
        body = json.loads(m["Body"])
        del body["t"]
        m["Body"] = json.dumps({**body, "s": "aBc123x", "m": 1})  # what messages carried before
    assert count(msgs) == []
    day = get(k.pk_code_agg("code-old"), k.sk_day(day_bucket(int(time.time()))))
    assert (day["total"], day["t_default"]) == (3, 3)


def test_max_scans_then_fallback_and_the_window(queue: str, make_account: Any) -> None:
    now = int(time.time())
    acct, code = routed_code(make_account, {"max_scans": 3, "fallback_url": "https://example.com/ended"})
    for _ in range(3):
        assert scan(code["shortcode"])["headers"]["Location"] == "https://example.com/default"
    assert count(everything_sent(queue)) == []
    assert limit_count(code) == 3
    r = scan(code["shortcode"])  # at once: the limit is the redirect's own count
    assert (r["statusCode"], r["headers"]["Location"]) == (302, "https://example.com/ended")
    assert [json.loads(m["Body"])["t"] for m in everything_sent(queue)] == ["fallback"]

    set_routing(acct.caller().scope, code, {"max_scans": 3})  # no fallback: 410, not counted
    r = scan(code["shortcode"])
    assert r["statusCode"] == 410 and "ended" in r["body"] and "Location" not in r["headers"]
    assert r["headers"]["Cache-Control"] == "no-store"
    set_routing(acct.caller().scope, code, {"starts_at": now + 3600})
    r = scan(code["shortcode"])
    assert r["statusCode"] == 404 and "not active yet" in r["body"] and r["headers"]["Cache-Control"] == "no-store"
    assert "QR Pro" not in r["body"]
    set_routing(acct.caller().scope, code, {"starts_at": now - 60, "expires_at": now + 3600})
    assert scan(code["shortcode"])["statusCode"] == 302
    assert [json.loads(m["Body"])["t"] for m in everything_sent(queue)] == ["default"]


def test_by_target_sums_to_total_under_the_noise_floor(queue: str, api: Any, make_account: Any) -> None:
    acct, code = routed_code(make_account, RULES)
    for _ in range(6):
        scan(code["shortcode"], WINDOWS, "DE")  # rule:0 x6
    for _ in range(2):
        scan(code["shortcode"], IPHONE, "US")  # rule:1 x2: under the floor
    plain = codes.create(acct.caller(), {"url": "https://example.com/plain"}, int(time.time()))
    for _ in range(5):
        scan(plain["shortcode"], WINDOWS, "US")  # default x5
    assert count(everything_sent(queue)) == []
    body = api.request("GET", f"/api/codes/{code['id']}/analytics?range=7d", acct.token).json()
    assert body["by_target"] == [{"key": "rule:0", "total": 6}, {"key": "other", "total": 2}]
    assert sum(t["total"] for t in body["by_target"]) == body["total"] == 8
    body = api.request("GET", "/api/analytics?range=7d", acct.token).json()
    assert body["by_target"] == [{"key": "rule:0", "total": 6}, {"key": "default", "total": 5},
                                 {"key": "other", "total": 2}]
    assert sum(t["total"] for t in body["by_target"]) == body["total"] == 13
