"""Routing at the redirect and its counting (docs/api.md section 14), against
DynamoDB Local and moto's SQS: the target each scan is counted under, the
lifetime ``scans_total`` exact under redelivery, ``by_target`` summing to
``total`` under the noise floor, ``max_scans`` handing over to the fallback.

Routed codes are set up by writing ``routing`` (the stored form, compact JSON)
on the code and SHORT# items, as the codes API stores it."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from lambdas.redirect import handler as redirect
from qrpro.data import keys as k
from qrpro.data import table as tables
from qrpro.domain.clock import day_bucket
from qrpro.services import codes
from tests.integration import test_scans
from tests.integration.test_scans import IPHONE, WINDOWS, get, messages_for, receive_all, run_consumer, scan

queue = test_scans.queue  # the fixture: a fresh scans queue on moto's server

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


def short_total(code: dict[str, Any]) -> int:
    return int(get(k.pk_short(code["shortcode"]), "SHORT").get("scans_total", 0))


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
    msgs = receive_all(queue)
    targets = [json.loads(m["Body"])["t"] for m in msgs]
    assert targets[:2] == ["rule:0", "rule:1"] and set(targets[2:]) == {"split:0", "split:1"} and len(targets) == 42
    assert {json.loads(m["Body"])["s"] for m in msgs} == {code["shortcode"]}

    assert run_consumer(msgs) == []
    day = get(k.pk_code_agg(code["id"]), k.sk_day(day_bucket(int(time.time()))))
    assert day["total"] == 42 and day["t_rule:0"] == 1 and day["t_rule:1"] == 1
    assert day["t_split:0"] + day["t_split:1"] == 40
    assert short_total(code) == 42
    scope_day = get(k.pk_scope_agg(acct.caller().scope), k.sk_day(day_bucket(int(time.time()))))
    assert scope_day["t_rule:0"] == 1  # the scope's aggregate too (7.2)


def test_scans_total_is_exact_under_redelivery_and_duplicates(queue: str, make_account: Any) -> None:
    _, code = routed_code(make_account, RULES)
    for _ in range(25):
        scan(code["shortcode"], WINDOWS, "FR")
    msgs = receive_all(queue)
    assert run_consumer(msgs[:10]) == []
    assert run_consumer(msgs) == []  # the first ten again
    assert run_consumer([*msgs[5:20], {"MessageId": "dup", "Body": msgs[0]["Body"]}]) == []
    assert short_total(code) == 25
    assert get(k.pk_code_agg(code["id"]), k.sk_day(day_bucket(int(time.time()))))["total"] == 25


def test_old_messages_without_target_or_shortcode_count_as_default(table: str) -> None:
    msgs = messages_for("code-old", 3)
    for m in msgs:
        body = json.loads(m["Body"])
        del body["t"], body["s"]
        m["Body"] = json.dumps(body)
    assert run_consumer(msgs) == []
    day = get(k.pk_code_agg("code-old"), k.sk_day(day_bucket(int(time.time()))))
    assert (day["total"], day["t_default"]) == (3, 3)


def test_a_deleted_or_reused_shortcode_gets_no_stray_scans_total(queue: str, make_account: Any) -> None:
    _, code = routed_code(make_account, RULES)
    scan(code["shortcode"], WINDOWS, "FR")
    msgs = receive_all(queue)
    boto3.client("dynamodb").update_item(  # the shortcode now belongs to another code
        TableName=tables.table(), Key={"pk": {"S": k.pk_short(code["shortcode"])}, "sk": {"S": "SHORT"}},
        UpdateExpression="SET code_id = :c", ExpressionAttributeValues={":c": {"S": "another"}})
    other = messages_for("code-z", 2)  # same batch: counted as usual
    assert run_consumer([*msgs, *other]) == []
    assert short_total(code) == 0  # not given to the other code
    assert get(k.pk_code_agg(code["id"]), k.sk_day(day_bucket(int(time.time()))))["total"] == 1
    boto3.client("dynamodb").delete_item(
        TableName=tables.table(), Key={"pk": {"S": k.pk_short(code["shortcode"])}, "sk": {"S": "SHORT"}})
    scan_msgs = [{"MessageId": "m2", "Body": msgs[0]["Body"].replace(json.loads(msgs[0]["Body"])["id"], "f" * 32)}]
    assert run_consumer(scan_msgs) == []
    assert get(k.pk_short(code["shortcode"]), "SHORT") == {}  # no item made of a counter alone


def test_max_scans_then_fallback_and_the_window(queue: str, make_account: Any) -> None:
    now = int(time.time())
    acct, code = routed_code(make_account, {"max_scans": 3, "fallback_url": "https://example.com/ended"})
    for _ in range(3):
        assert scan(code["shortcode"])["headers"]["Location"] == "https://example.com/default"
    assert run_consumer(receive_all(queue)) == []
    assert short_total(code) == 3
    redirect._cache.clear()  # the cache window passed
    r = scan(code["shortcode"])
    assert (r["statusCode"], r["headers"]["Location"]) == (302, "https://example.com/ended")
    assert [json.loads(m["Body"])["t"] for m in receive_all(queue)] == ["fallback"]

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
    assert [json.loads(m["Body"])["t"] for m in receive_all(queue)] == ["default"]


def test_by_target_sums_to_total_under_the_noise_floor(queue: str, api: Any, make_account: Any) -> None:
    acct, code = routed_code(make_account, RULES)
    for _ in range(6):
        scan(code["shortcode"], WINDOWS, "DE")  # rule:0 x6
    for _ in range(2):
        scan(code["shortcode"], IPHONE, "US")  # rule:1 x2: under the floor
    plain = codes.create(acct.caller(), {"url": "https://example.com/plain"}, int(time.time()))
    for _ in range(5):
        scan(plain["shortcode"], WINDOWS, "US")  # default x5
    assert run_consumer(receive_all(queue)) == []
    body = api.request("GET", f"/api/codes/{code['id']}/analytics?range=7d", acct.token).json()
    assert body["by_target"] == [{"key": "rule:0", "total": 6}, {"key": "other", "total": 2}]
    assert sum(t["total"] for t in body["by_target"]) == body["total"] == 8
    body = api.request("GET", "/api/analytics?range=7d", acct.token).json()
    assert body["by_target"] == [{"key": "rule:0", "total": 6}, {"key": "default", "total": 5},
                                 {"key": "other", "total": 2}]
    assert sum(t["total"] for t in body["by_target"]) == body["total"] == 13
