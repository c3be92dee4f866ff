"""The redirect, the scan aggregator, the compaction and analytics 7.1-7.3 against
DynamoDB Local and moto's SQS/SES: statuses, privacy of what is stored, nothing
lost when SQS or DynamoDB fail, the monthly cap, analytics checkable by hand.
(Exactness under redelivery and faults: tests/integration/test_counting.py.)"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.redirect import handler as redirect
from lambdas.scans import handler as consumer
from qrpro.data import accounts, edge
from qrpro.data import keys as k
from qrpro.data import table as tables
from qrpro.domain.clock import day_bucket, days_back, hour_bucket, month_bucket
from qrpro.domain.errors import MESSAGES
from qrpro.domain.plans import plan
from qrpro.services import codes
from qrpro.services import scans as scan_service
from qrpro_cli.runtime import FakeContext
from tests.helpers.scans import (
    FACEBOOK,
    GOOGLE,
    IPAD,
    IPHONE,
    SCHEDULED,
    SECRET_IP,
    SECRET_UA,
    SLACK,
    WINDOWS,
    all_items,
    count,
    events_of,
    everything_sent,
    fold_all,
    get,
    mail_cap_events,
    messages_for,
    receive_all,
    run_consumer,
    scan,
    sent_to,
)

DRAIN = scan_service.drain_pending


def day_total(code_id: str) -> int:
    return int(get(k.pk_code_agg(code_id), k.sk_day(day_bucket(int(time.time())))).get("total", 0))


# -- the redirect ----------------------------------------------------------------------------

def test_active_code_redirects_302_and_enqueues_one_scan(queue: str, make_account: Any) -> None:
    caller = make_account("business").caller()
    code = codes.create(caller, {"url": "https://example.com/landing?a=1"}, int(time.time()))
    r = scan(code["shortcode"], IPHONE, "de")
    assert r["statusCode"] == 302
    assert r["headers"]["Location"] == "https://example.com/landing?a=1"
    assert r["headers"]["Cache-Control"] == "no-store"
    msgs = everything_sent(queue)
    assert len(msgs) == 1
    body = json.loads(msgs[0]["Body"])
    assert body.pop("id")
    assert body == {"code_id": code["id"], "scope": caller.scope, "plan": "business",
                    "hour": hour_bucket(int(time.time())), "country": "DE", "device": "mobile",
                    "t": "default", "n": 1, "o": "ios"}  # n: the scope's codes (codes_used); o: the OS family
    assert SECRET_UA not in msgs[0]["Body"] and SECRET_IP not in msgs[0]["Body"]


def test_statuses(queue: str, make_account: Any) -> None:
    acct = make_account("business")
    caller = acct.caller()
    now = int(time.time())
    active = codes.create(caller, {"url": "https://example.com/a"}, now)
    paused = codes.create(caller, {"url": "https://example.com/p"}, now)
    codes.update(caller, paused["id"], {"status": "paused"}, now)
    grace = codes.create(caller, {"url": "https://example.com/g"}, now)
    codes.soft_delete(caller, grace["id"], now)
    late = codes.create(caller, {"url": "https://example.com/late"}, now)
    codes.soft_delete(caller, late["id"], now - 91 * 86_400)  # grace_until already passed, job not run yet
    expired = codes.create(caller, {"url": "https://example.com/e"}, now)
    codes.soft_delete(caller, expired["id"], now - 91 * 86_400)
    assert codes.expire(caller.scope, expired["id"], now)

    r = scan(active["shortcode"])
    assert (r["statusCode"], r["headers"]["Location"]) == (302, "https://example.com/a")
    r = scan(grace["shortcode"])
    assert (r["statusCode"], r["headers"]["Location"]) == (302, "https://example.com/g")
    r = scan(paused["shortcode"])
    assert r["statusCode"] == 404 and "paused" in r["body"] and "Location" not in r["headers"]
    assert r["headers"]["Content-Type"] == "text/html; charset=utf-8" and r["headers"]["Cache-Control"] == "no-store"
    for gone in (late, expired):
        r = scan(gone["shortcode"])
        assert r["statusCode"] == 410 and "expired" in r["body"] and "Location" not in r["headers"]
    for unknown in ("zzzzzzz", "abc", "favicon.ico", "", "aBc123x/extra", "0OIl000"):
        r = scan(unknown)
        assert r["statusCode"] == 404 and "no QR code" in r["body"], unknown
    # only the two redirects were counted
    counted = {json.loads(m["Body"])["id"]: json.loads(m["Body"])["code_id"] for m in everything_sent(queue)}
    assert sorted(counted.values()) == sorted([active["id"], grace["id"]])

    accounts.set_plan(caller.scope, None, "expired", now)
    redirect._cache.clear()
    for code in (active, grace, paused):
        r = scan(code["shortcode"])
        assert r["statusCode"] == 410 and "expired" in r["body"]
    assert everything_sent(queue) == []


def test_head_and_bots_redirect_without_counting_bots_apart(queue: str, api: Any, make_account: Any) -> None:
    acct = make_account()
    code = codes.create(acct.caller(), {"url": "https://example.com/h"}, int(time.time()))
    r = scan(code["shortcode"], method="HEAD")
    assert (r["statusCode"], r["headers"]["Location"], r["body"]) == (302, "https://example.com/h", "")
    assert everything_sent(queue) == []  # a HEAD is nothing
    for bot in (SLACK, FACEBOOK, GOOGLE, "WhatsApp/2.23.20.0 A", "Twitterbot/1.0"):
        assert scan(code["shortcode"], bot)["statusCode"] == 302
    assert scan(code["shortcode"], "curl/8.5.0", None)["statusCode"] == 302  # curl is a person
    sent = [json.loads(m["Body"]) for m in everything_sent(queue)]
    assert sorted((m.get("b", 0), m["device"]) for m in sent) == [(0, "unknown")] + [(1, "unknown")] * 5
    assert count([{"MessageId": str(uuid.uuid4()), "Body": json.dumps(m)} for m in sent]) == []
    body = api.request("GET", f"/api/codes/{code['id']}/analytics?range=7d", acct.token).json()
    assert (body["total"], body["bots"]) == (1, 5)  # bots and link previews counted apart, never in total
    assert sum(p["total"] for p in body["by_device"]) == sum(p["total"] for p in body["by_os"]) == 1
    r = scan(code["shortcode"], method="POST")
    assert r["statusCode"] == 405 and r["headers"]["Allow"] == "GET, HEAD"


class Counting:
    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if callable(attr):
            def call(*a: Any, **kw: Any) -> Any:
                self.calls.append(name)
                return attr(*a, **kw)
            return call
        return attr


def test_cache_hit_costs_one_aws_call_and_changes_show_after_the_cache_window(
        queue: str, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = make_account().caller()
    code = codes.create(caller, {"url": "https://example.com/v1"}, int(time.time()))
    clients: dict[str, Counting] = {}

    def counting(service: str) -> Counting:
        if service not in clients:
            clients[service] = Counting(edge._fast_client(service, None))
        return clients[service]

    monkeypatch.setattr(edge, "fast", counting)
    clock = [1000.0]
    monkeypatch.setattr(redirect.time, "monotonic", lambda: clock[0])
    scan(code["shortcode"])
    assert clients["dynamodb"].calls == ["get_item", "get_item"] and clients["sqs"].calls == ["send_message"]
    for _ in range(5):
        assert scan(code["shortcode"])["statusCode"] == 302
    assert clients["dynamodb"].calls == ["get_item", "get_item"]  # cache hits: no read
    assert clients["sqs"].calls == ["send_message"] * 6  # one AWS call per scan

    codes.update(caller, code["id"], {"url": "https://example.com/v2"}, int(time.time()))
    clock[0] += redirect.CACHE_SECONDS - 0.5
    assert scan(code["shortcode"])["headers"]["Location"] == "https://example.com/v1"
    clock[0] += 0.6  # past the cache window (< 5 s after the change)
    assert scan(code["shortcode"])["headers"]["Location"] == "https://example.com/v2"
    codes.update(caller, code["id"], {"status": "paused"}, int(time.time()))
    clock[0] += redirect.CACHE_SECONDS
    assert scan(code["shortcode"])["statusCode"] == 404


def test_nothing_of_the_request_is_stored_or_logged(queue: str, make_account: Any,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    code = codes.create(make_account().caller(), {"url": "https://example.com/p"}, int(time.time()))
    scan(code["shortcode"], SECRET_UA, "FR")
    msgs = everything_sent(queue)
    assert count(msgs) == []
    dump = json.dumps(all_items()) + json.dumps(msgs) + caplog.text
    assert SECRET_UA not in dump and "Sentinel" not in dump and SECRET_IP not in dump
    day = get(k.pk_code_agg(code["id"]), k.sk_day(day_bucket(int(time.time()))))
    assert {n for n in day if n not in ("pk", "sk")} == {"total", "c_FR", "d_mobile", "o_ios", "t_default", "ttl",
                                                         "st"}
    assert "scans_total" not in get(k.pk_short(code["shortcode"]), "SHORT")  # a scan adds nothing to the code


# -- enqueue failures: nothing lost ----------------------------------------------------------------

def _sqs_down(*args: Any) -> Any:
    raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")


def emf_metrics(out: str) -> Counter[str]:
    """The redirect's Embedded Metric Format lines on stdout: metric name -> count."""
    found: Counter[str] = Counter()
    for line in out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        doc = json.loads(line)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == redirect.METRIC_NAMESPACE == "QRPro"
        assert directive["Dimensions"] == [["service"]] and doc["service"] == "qrpro-redirect"
        (metric,) = directive["Metrics"]
        assert metric["Unit"] == "Count" and doc[metric["Name"]] == 1
        assert set(doc) == {"_aws", "service", metric["Name"]}, "a count only: no visitor data"
        found[metric["Name"]] += 1
    return found


def test_sqs_failure_parks_the_scan_in_dynamodb_and_the_aggregator_counts_it(
        queue: str, make_account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = codes.create(make_account().caller(), {"url": "https://example.com/q"}, int(time.time()))
    scan(code["shortcode"])
    assert emf_metrics(capsys.readouterr().out) == {}  # a queued scan emits nothing
    receive_all(queue)
    monkeypatch.setattr(edge, "_send", _sqs_down)
    for _ in range(3):
        assert scan(code["shortcode"], SECRET_UA)["statusCode"] == 302  # the visitor is redirected anyway
    out = capsys.readouterr().out
    assert emf_metrics(out) == {"ScansParked": 3}  # what the ScansParked alarm counts
    assert SECRET_UA not in out and code["shortcode"] not in out
    assert receive_all(queue) == []
    pending = [i for i in all_items() if i["pk"].startswith("SCANPENDING#")]
    assert len(pending) == 3
    assert day_total(code["id"]) == 0
    # The schedule counts them although no scan reaches the aggregator any more.
    assert consumer.handler(SCHEDULED, FakeContext("scans", "r1")) == {"drained": 3}
    fold_all()
    assert day_total(code["id"]) == 3
    assert [i for i in all_items() if i["pk"].startswith("SCANPENDING#")] == []
    assert consumer.handler(SCHEDULED, FakeContext("scans", "r2")) == {"drained": 0}
    fold_all()
    assert day_total(code["id"]) == 3


def test_the_schedule_drains_more_than_one_page_of_parked_scans(
        queue: str, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    code = codes.create(make_account().caller(), {"url": "https://example.com/many"}, int(time.time()))
    monkeypatch.setattr(edge, "_send", _sqs_down)
    monkeypatch.setattr(scan_service, "drain_pending", lambda now, limit=2: DRAIN(now, limit))  # tiny pages
    for _ in range(25):
        scan(code["shortcode"])
    assert consumer.handler(SCHEDULED, FakeContext("scans", "r1")) == {"drained": 25}
    fold_all()
    assert day_total(code["id"]) == 25


def test_sqs_and_dynamodb_down_buffers_and_flushes_with_the_next_scan(
        queue: str, make_account: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = codes.create(make_account().caller(), {"url": "https://example.com/b"}, int(time.time()))
    scan(code["shortcode"])  # warm the cache: lookups keep working from memory
    receive_all(queue)
    real_send = edge._send
    monkeypatch.setattr(edge, "_send", _sqs_down)
    monkeypatch.setattr(edge, "_save_pending", _sqs_down)
    for _ in range(4):
        assert scan(code["shortcode"])["statusCode"] == 302
    assert len(edge._unsent) == 4
    assert emf_metrics(capsys.readouterr().out) == {"ScansBuffered": 4}
    monkeypatch.setattr(edge, "_send", real_send)
    monkeypatch.setattr(edge, "_down_until", {"sqs": 0.0, "dynamodb": 0.0})  # breaker window over
    assert scan(code["shortcode"])["statusCode"] == 302
    assert edge._unsent == []
    msgs = everything_sent(queue)
    assert len(msgs) == 5 and len({json.loads(m["Body"])["id"] for m in msgs}) == 5


# -- the aggregator -------------------------------------------------------------------------------

def test_a_batch_is_written_as_panes_and_folded_into_the_aggregates(table: str) -> None:
    now = int(time.time())
    msgs = messages_for("code-a", 7) + messages_for("code-b", 3, country="CA", device="tablet")
    assert run_consumer(msgs) == []
    assert [i for i in all_items() if i["pk"].startswith(("AGG#", "SAGG#"))] == []  # not folded yet
    assert fold_all() == 10
    today = day_bucket(now)
    assert get(k.pk_code_agg("code-a"), k.sk_day(today))["total"] == 7
    b = get(k.pk_code_agg("code-b"), k.sk_day(today))
    assert (b["total"], b["c_CA"], b["d_tablet"], b["t_default"]) == (3, 3, 3, 3)
    scope_day = get(k.pk_scope_agg("USER#u"), k.sk_day(today))
    assert (scope_day["total"], scope_day["c_US"], scope_day["c_CA"]) == (10, 7, 3)
    for code_id, n in (("code-a", 7), ("code-b", 3)):
        shard = get(k.pk_scope_agg("USER#u"), k.sk_codes_day(today, code_id))
        assert shard["sk"].startswith(f"K#{today}#") and shard[f"k_{code_id}"] == n
    assert get(k.pk_scope_agg("USER#u"), k.sk_month(month_bucket(now)))[f"u_{today[8:]}"] == 10
    # business: no hourly aggregates; team: hourly too
    assert get(k.pk_code_agg("code-a"), k.sk_hour(hour_bucket(now))) == {}
    assert count(messages_for("code-t", 2, scope="TEAM#t", plan_name="team")) == []
    assert get(k.pk_code_agg("code-t"), k.sk_hour(hour_bucket(now)))["total"] == 2
    assert get(k.pk_scope_agg("TEAM#t"), k.sk_hour(hour_bucket(now)))["total"] == 2


def test_aggregates_expire_after_the_plans_retention(table: str) -> None:
    now = int(time.time())
    assert count(messages_for("c1", 1, plan_name="business") + messages_for("c2", 1, scope="TEAM#t",
                                                                             plan_name="team")) == []
    day_end = (now // 86_400 + 1) * 86_400
    hour_end = (now // 3600 + 1) * 3600
    assert get(k.pk_code_agg("c1"), k.sk_day(day_bucket(now)))["ttl"] == day_end + 730 * 86_400
    assert get(k.pk_code_agg("c2"), k.sk_day(day_bucket(now)))["ttl"] == day_end + 1095 * 86_400
    assert get(k.pk_code_agg("c2"), k.sk_hour(hour_bucket(now)))["ttl"] == hour_end + 1095 * 86_400
    # the panes (one row per scan) live 17 days after their day, no longer
    panes_ = [i for i in all_items() if i["pk"].startswith("PANE#") and str(i["sk"]).startswith("#")]
    assert panes_ and all(p["ttl"] == day_end + 17 * 86_400 for p in panes_)


def test_malformed_messages_are_dropped_not_retried(table: str) -> None:
    bad = [{"MessageId": "m1", "Body": "not json"}, {"MessageId": "m2", "Body": json.dumps({"id": "x"})},
           {"MessageId": "m3", "Body": json.dumps({"id": "x", "code_id": "c", "scope": "EVIL", "plan": "solo",
                                                   "hour": "2026-01-01-00", "country": "US", "device": "mobile"})}]
    assert count(bad) == []
    assert [i for i in all_items() if i["pk"].startswith(("AGG#", "SAGG#", "PANE#"))] == []


# -- the monthly cap ------------------------------------------------------------------------------------

def test_crossing_the_cap_writes_one_event_and_the_mail_function_sends_one_email(queue: str,
                                                                                 make_account: Any) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    acct = make_account("solo", email=email)
    scope = acct.caller().scope
    now = int(time.time())
    month = month_bucket(now)
    cap = plan("solo").scans_per_month
    boto3.client("dynamodb").put_item(TableName=tables.table(), Item={  # counted by the design before panes
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_month(month)}, "used": {"N": str(cap - 3)}})
    assert count(messages_for("c1", 2, scope=scope, plan_name="solo")) == []
    assert events_of(scope) == [] and get(k.pk_scope_agg(scope), k.sk_month(month)).get("cap_notified") is None
    assert count(messages_for("c1", 2, scope=scope, plan_name="solo")) == []  # crosses: cap + 1
    events = events_of(scope)
    assert [e["data"] for e in events] == [{"month": month, "used": cap + 1, "cap": cap, "plan": "solo"}]
    month_item = get(k.pk_scope_agg(scope), k.sk_month(month))
    assert month_item["cap_notified"] is True and month_item["cap_email"] == "pending"
    assert sent_to(email) == []  # counting sends nothing: the mail function does
    assert mail_cap_events(scope) == {"batchItemFailures": []}
    assert len(sent_to(email)) == 1 and get(k.pk_scope_agg(scope), k.sk_month(month))["cap_email"] == "sent"
    # more scans, more folds, the event delivered again: never a second event nor email
    for _ in range(3):
        assert count(messages_for("c2", 3, scope=scope, plan_name="solo")) == []
        mail_cap_events(scope)
    assert len(events_of(scope)) == 1 and len(sent_to(email)) == 1
    assert scan_service.caps.month_usage(scope, month).used == cap + 10


def test_team_cap_email_goes_to_the_team_owner(queue: str, make_account: Any) -> None:
    email = f"teamowner-{uuid.uuid4().hex[:8]}@example.com"
    owner = make_account("business", email=email)
    team_id = accounts.create_team(owner.user_id, "Crew", "team", int(time.time()))
    scope = f"TEAM#{team_id}"
    month = month_bucket(int(time.time()))
    cap = plan("team").scans_per_month
    boto3.client("dynamodb").put_item(TableName=tables.table(), Item={
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_month(month)}, "used": {"N": str(cap - 1)}})
    assert count(messages_for("c9", 1, scope=scope, plan_name="team")) == []
    mail_cap_events(scope)
    assert len(sent_to(email)) == 1 and len(events_of(scope)) == 1


def test_a_failed_email_is_retried_by_its_queue_and_never_holds_up_counting(
        queue: str, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    email = f"retry-{uuid.uuid4().hex[:8]}@example.com"
    scope = make_account("solo", email=email).caller().scope
    month = month_bucket(int(time.time()))
    cap = plan("solo").scans_per_month
    boto3.client("dynamodb").put_item(TableName=tables.table(), Item={
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_month(month)}, "used": {"N": str(cap - 1)}})
    real_client = scan_service.caps.client

    def ses_down(service: str) -> Any:
        if service == "ses":
            raise ClientError({"Error": {"Code": "Throttling", "Message": "ses"}}, "SendEmail")
        return real_client(service)

    monkeypatch.setattr(scan_service.caps, "client", ses_down)
    assert count(messages_for("c1", 1, scope=scope, plan_name="solo")) == []  # SES never asked
    assert len(events_of(scope)) == 1
    assert len(mail_cap_events(scope)["batchItemFailures"]) == 1  # the message comes back later
    assert sent_to(email) == [] and get(k.pk_scope_agg(scope), k.sk_month(month))["cap_email"] == "pending"
    assert count(messages_for("c1", 2, scope=scope, plan_name="solo")) == []  # counting goes on
    monkeypatch.setattr(scan_service.caps, "client", real_client)
    assert mail_cap_events(scope) == {"batchItemFailures": []}
    assert len(sent_to(email)) == 1 and len(events_of(scope)) == 1
    assert scan_service.caps.month_usage(scope, month).used == cap + 2


# -- analytics 7.1-7.3 through the API ---------------------------------------------------------------

# per 10 scans: 5 phones, 3 desktops, 1 tablet, 1 curl
UAS = [(IPHONE, "mobile")] * 5 + [(WINDOWS, "desktop")] * 3 + [(IPAD, "tablet"), ("curl/8.5.0", "unknown")]
# country header per scan: 4 get folded into Other (BR 4 < 5, 3 missing/invalid headers)
COUNTRIES = ["US"] * 5 + ["DE"] * 3 + ["FR"] + ["JP"]  # per 10 scans


def test_thousand_scans_give_analytics_checkable_by_hand(queue: str, api: Any, make_account: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account("business")
    caller = acct.caller()
    now = int(time.time())
    a = codes.create(caller, {"url": "https://example.com/a", "label": "Poster A"}, now)
    b = codes.create(caller, {"url": "https://example.com/b", "label": "Flyer B"}, now)
    expected_country: Counter[str] = Counter()
    expected_device: Counter[str] = Counter()
    b_devices: Counter[str] = Counter()
    for i in range(1000):
        code = a if i % 4 else b  # 750 on A, 250 on B
        ua, dev = UAS[(i // 10) % 10]
        cc: str | None = COUNTRIES[i % 10]
        if i in (1, 2, 3, 4):
            cc = "BR"  # 4 scans from BR: under the noise floor
        if i in (5, 6, 7):
            cc = [None, "T1", "USA"][i - 5]  # unknown countries
        assert scan(code["shortcode"], ua, cc)["statusCode"] == 302
        expected_device[dev] += 1
        if code is b:
            b_devices[dev] += 1
        expected_country[cc if cc in ("US", "DE", "FR", "JP", "BR") else "??"] += 1
        if i % 50 == 0:  # bots in between: redirected, never counted
            assert scan(code["shortcode"], SLACK)["statusCode"] == 302
    msgs = everything_sent(queue)
    # A send that timed out client-side under load may have landed anyway and been
    # retried: the same scan twice, which every fold counts once. 20 bots: counted apart.
    assert len({json.loads(m["Body"])["id"] for m in msgs if not json.loads(m["Body"]).get("b")}) == 1000
    assert run_consumer(msgs) == []
    assert run_consumer(msgs[:100]) == []  # a redelivery for good measure

    r = api.request("GET", "/api/analytics?range=7d", acct.token)
    assert r.status == 200, r.body
    body = r.json()
    today = day_bucket(int(time.time()))
    assert body["total"] == 1000 and body["bots"] == 20 and body["days"] == 7
    assert body["range"] == "7d" and body["granularity"] == "day"
    assert body["timeseries"] == [{"bucket": d, "scans": 1000 if d == today else 0}
                                  for d in days_back(int(time.time()), 7)]
    us = expected_country["US"]
    assert body["by_country"] == [
        {"key": "US", "total": us}, {"key": "DE", "total": expected_country["DE"]},
        {"key": "FR", "total": expected_country["FR"]}, {"key": "JP", "total": expected_country["JP"]},
        {"key": "Other", "total": expected_country["BR"] + expected_country["??"]}]
    assert expected_country["BR"] == 4 and expected_country["??"] == 3
    # by hand: per 10 scans US x5, DE x3, FR, JP; i = 1..4 were US (now BR), i = 5..7 were DE (now unknown)
    assert [(c["key"], c["total"]) for c in body["by_country"]] == [
        ("US", 496), ("DE", 297), ("FR", 100), ("JP", 100), ("Other", 7)]
    assert expected_device == {"mobile": 500, "desktop": 300, "tablet": 100, "unknown": 100}
    assert body["by_device"] == [{"key": "mobile", "total": 500}, {"key": "desktop", "total": 300},
                                 {"key": "tablet", "total": 100}, {"key": "unknown", "total": 100}]
    assert body["top_codes"] == [
        {"id": a["id"], "shortcode": a["shortcode"], "label": "Poster A", "total": 750},
        {"id": b["id"], "shortcode": b["shortcode"], "label": "Flyer B", "total": 250}]

    r = api.request("GET", f"/api/codes/{b['id']}/analytics", acct.token)
    assert r.status == 200, r.body
    body_b = r.json()
    assert (body_b["range"], body_b["days"], body_b["total"], len(body_b["timeseries"])) == ("30d", 30, 250, 30)
    assert body_b["by_device"] == [{"key": d, "total": n} for d, n in sorted(b_devices.items(),
                                                                              key=lambda kv: (-kv[1], kv[0]))]
    assert sum(x["total"] for x in body_b["by_country"]) == 250
    assert "top_codes" not in body_b
    # the code's list entry agrees
    listed = {c["id"]: c["scans_30d"] for c in api.request("GET", "/api/codes", acct.token).json()["codes"]}
    assert listed == {a["id"]: 750, b["id"]: 250}


def test_counts_stay_whole_when_the_scope_changes_layout_mid_day(api: Any, make_account: Any) -> None:
    """A scope whose number of codes crossed a power of two during the day: its codes' day
    counters sit in two layouts of K# shards (k.codes_day_shards), and every reader adds them up."""
    acct = make_account("business")
    caller = acct.caller()
    now = int(time.time())
    made = [codes.create(caller, {"url": f"https://example.com/{i}"}, now) for i in range(3)]
    msgs = [{"MessageId": str(uuid.uuid4()),
             "Body": edge.scan_message(c["id"], caller.scope, "business", now, "US", "mobile", codes=layout)}
            for layout in (16, 500) for i, c in enumerate(made) for _ in range(i + 1)]
    assert count(msgs) == []
    first, last = k.codes_day_range(day_bucket(now), day_bucket(now))
    shards = boto3.client("dynamodb").query(
        TableName=tables.table(), KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
        ExpressionAttributeValues={":pk": {"S": k.pk_scope_agg(caller.scope)}, ":a": {"S": first},
                                   ":b": {"S": last}})["Items"]
    today = day_bucket(now)
    assert {i["sk"]["S"] for i in shards} == {k.sk_codes_day(today, c["id"], n) for c in made
                                              for n in (1, 32)}  # a scope of 16 codes: 1 shard; of 500: 32
    listed = {c["id"]: c["scans_30d"] for c in api.request("GET", "/api/codes", acct.token).json()["codes"]}
    assert listed == {c["id"]: 2 * (i + 1) for i, c in enumerate(made)}
    top = api.request("GET", "/api/analytics", acct.token).json()["top_codes"]
    assert [(t["id"], t["total"]) for t in top] == [(c["id"], 2 * (i + 1)) for i, c in reversed(list(enumerate(made)))]


def seed_day(code_id: str, scope: str, day: str, total: int, cc: str = "US", dev: str = "mobile") -> None:
    client = boto3.client("dynamodb")
    for pk in (k.pk_code_agg(code_id), k.pk_scope_agg(scope)):
        client.put_item(TableName=tables.table(), Item={
            "pk": {"S": pk}, "sk": {"S": k.sk_day(day)}, "total": {"N": str(total)},
            f"c_{cc}": {"N": str(total)}, f"d_{dev}": {"N": str(total)}})
    client.put_item(TableName=tables.table(), Item={
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_codes_day(day, code_id)},
        f"k_{code_id}": {"N": str(total)}})


def test_range_is_capped_by_retention_and_reads_are_bounded(api: Any, make_account: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account("business")
    caller = acct.caller()
    now = int(time.time())
    code = codes.create(caller, {"url": "https://example.com/r"}, now)
    days = days_back(now, 1095)
    seed_day(code["id"], caller.scope, days[-1], 7)          # today
    seed_day(code["id"], caller.scope, days[-400], 11)       # within 730 days, not within 365
    seed_day(code["id"], caller.scope, days[-1000], 13)      # beyond business retention
    calls: list[str] = []
    real = tables.ddb()

    class Spy:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(real, name)

    from qrpro.data import codes as code_repo
    from qrpro.data import table as table_module

    for module in (code_repo, table_module):  # every data module this request reads through
        monkeypatch.setattr(module, "ddb", lambda: Spy())
    r = api.request("GET", f"/api/codes/{code['id']}/analytics?range=3y", acct.token)
    assert r.status == 200, r.body
    body = r.json()
    assert (body["range"], body["days"], len(body["timeseries"]), body["total"]) == ("3y", 730, 730, 18)
    assert body["timeseries"][0]["bucket"] == days[-730] and body["timeseries"][-1] == {"bucket": days[-1],
                                                                                        "scans": 7}
    # The caller's profile and the daily budget (the pipeline), the code, the scope's open days (one
    # Query of their marks: none here, so no pane is read), then one Query for 730 days.
    assert calls == ["get_item", "update_item", "get_item", "query", "query"]
    calls.clear()
    r = api.request("GET", "/api/analytics?range=3y", acct.token)
    assert (r.json()["total"], r.json()["top_codes"][0]["total"]) == (18, 18)
    # get_item: the caller's profile; update_item: the daily budget; a Query of the open days
    assert sorted(calls) == ["batch_get_item", "get_item", "query", "query", "query", "update_item"]
    r = api.request("GET", f"/api/codes/{code['id']}/analytics?range=1y", acct.token)
    assert (r.json()["days"], r.json()["total"]) == (365, 7)


def test_hourly_analytics_rules(queue: str, api: Any, make_account: Any) -> None:
    biz = make_account("business")
    code = codes.create(biz.caller(), {"url": "https://example.com/h"}, int(time.time()))
    r = api.request("GET", f"/api/codes/{code['id']}/analytics?range=7d&granularity=hour", biz.token)
    assert (r.status, r.json()) == (403, {"error": "insufficient_plan", "plan": "business", "required": "team",
                                          "message": MESSAGES["insufficient_plan"]})

    owner = make_account("business")
    team_id = accounts.create_team(owner.user_id, "Hourly", "team", int(time.time()))
    accounts.use_team(owner.user_id, team_id)
    caller = owner.caller()
    code = codes.create(caller, {"url": "https://example.com/t"}, int(time.time()))
    for cc in ["US"] * 6 + ["CA"] * 2:
        scan(code["shortcode"], WINDOWS, cc)
    assert run_consumer(everything_sent(queue)) == []
    r = api.request("GET", f"/api/codes/{code['id']}/analytics?granularity=hour", owner.token)
    assert r.status == 400 and r.json()["error"] == "validation_error"
    r = api.request("GET", f"/api/codes/{code['id']}/analytics?range=7d&granularity=hour", owner.token)
    assert r.status == 200, r.body
    body = r.json()
    assert (body["granularity"], body["days"], len(body["timeseries"]), body["total"]) == ("hour", 7, 168, 8)
    assert body["timeseries"][-1] == {"bucket": hour_bucket(int(time.time())), "scans": 8}
    assert body["by_country"] == [{"key": "US", "total": 6}, {"key": "Other", "total": 2}]
    assert body["by_device"] == [{"key": "desktop", "total": 8}]
    r = api.request("GET", "/api/analytics?range=7d&granularity=hour", owner.token)
    assert (r.json()["total"], len(r.json()["timeseries"]), r.json()["top_codes"][0]["total"]) == (8, 168, 8)
    r = api.request("GET", "/api/analytics?range=2w", owner.token)
    assert (r.status, r.json()["error"], r.json()["field"]) == (400, "validation_error", "range")
    r = api.request("GET", "/api/analytics?granularity=minute", owner.token)
    assert (r.status, r.json()["field"]) == (400, "granularity")


def test_other_tenants_and_missing_objects_are_404(api: Any, make_account: Any) -> None:
    mine, theirs = make_account(), make_account()
    code = codes.create(theirs.caller(), {"url": "https://example.com/x"}, int(time.time()))
    for path in (f"/api/codes/{code['id']}/analytics", f"/api/codes/{uuid.uuid4()}/analytics",
                 f"/api/groups/{uuid.uuid4()}/analytics"):
        r = api.request("GET", path, mine.token)
        assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]}), path
    r = api.request("GET", "/api/analytics", mine.token)
    assert r.status == 200 and r.json()["total"] == 0 and r.json()["top_codes"] == []


def test_group_analytics_sums_its_codes(queue: str, api: Any, make_account: Any) -> None:
    acct = make_account()
    caller = acct.caller()
    now = int(time.time())
    group_id = str(uuid.uuid4())
    boto3.client("dynamodb").put_item(TableName=tables.table(), Item={
        "pk": {"S": caller.scope}, "sk": {"S": k.sk_group(group_id)}, "id": {"S": group_id},
        "name": {"S": "Print"}, "code_count": {"N": "0"}})
    inside = [codes.create(caller, {"url": f"https://example.com/{i}", "group_id": group_id}, now) for i in range(3)]
    outside = codes.create(caller, {"url": "https://example.com/out"}, now)
    for i, code in enumerate(inside):
        for _ in range(i + 2):  # 2, 3, 4 scans
            scan(code["shortcode"], IPAD, "NL")
    for _ in range(10):
        scan(outside["shortcode"], IPAD, "NL")
    assert run_consumer(everything_sent(queue)) == []
    r = api.request("GET", f"/api/groups/{group_id}/analytics?range=7d", acct.token)
    assert r.status == 200, r.body
    body = r.json()
    assert body["total"] == 9 and body["by_country"] == [{"key": "NL", "total": 9}]
    assert body["by_device"] == [{"key": "tablet", "total": 9}] and body["timeseries"][-1]["scans"] == 9
    assert body["by_target"] == [{"key": "default", "total": 9}]
    assert set(body) == {"range", "days", "granularity", "total", "timeseries", "by_country", "by_device",
                         "by_os", "by_target", "bots"}
