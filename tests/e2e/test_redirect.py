"""The redirect as a printed code meets it, over HTTP on `qrpro local`: every
status of the contract's table, HEAD, bots, and scans reaching analytics
through the real queue and aggregator."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from qrpro.domain.clock import day_bucket
from tests.e2e.conftest import Stack, resource, running_stack, template_without, until

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


def create(stack: Stack, key: str, url: str) -> dict[str, Any]:
    r = stack.api("POST", "/api/codes", key, json_body={"url": url})
    assert r.status == 201, r.body
    body: dict[str, Any] = r.json()
    return body


def visit(stack: Stack, shortcode: str, method: str = "GET", ua: str = PHONE, country: str | None = "US") -> Any:
    headers = {"User-Agent": ua}
    if country:
        headers["CloudFront-Viewer-Country"] = country
    return stack.request(method, f"{stack.redirect_url}/{shortcode}", headers=headers)


def test_statuses_redirect_as_the_table_says(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    active = create(stack, key, "https://example.com/active")
    paused = create(stack, key, "https://example.com/paused")
    assert stack.api("PATCH", f"/api/codes/{paused['id']}", key, json_body={"status": "paused"}).status == 200
    grace = create(stack, key, "https://example.com/grace")
    assert stack.api("DELETE", f"/api/codes/{grace['id']}", key).json()["status"] == "grace"

    r = visit(stack, active["shortcode"])
    assert r.status == 302 and r.headers["Location"] == "https://example.com/active"
    assert r.headers["Cache-Control"] == "no-store"
    r = visit(stack, grace["shortcode"])
    assert r.status == 302 and r.headers["Location"] == "https://example.com/grace"
    r = visit(stack, paused["shortcode"])
    assert r.status == 404 and b"paused" in r.body and "Location" not in r.headers
    assert r.headers["Content-Type"] == "text/html; charset=utf-8" and r.headers["Cache-Control"] == "no-store"
    r = visit(stack, "zzzzzzz")
    assert r.status == 404 and b"no QR code" in r.body
    r = visit(stack, active["shortcode"], "HEAD")
    assert r.status == 302 and r.headers["Location"] == "https://example.com/active" and r.body == b""

    # the expiry job, run 91 days from now: the grace code is expired -> 410
    stack.admin("run-expiry", "--now", str(int(time.time()) + 91 * 86_400))
    r = until(lambda: (lambda x: x if x.status == 410 else None)(visit(stack, grace["shortcode"])))
    assert r is not None and b"expired" in r.body and "Location" not in r.headers
    # and back: reactivated, it redirects again
    assert stack.api("POST", f"/api/codes/{grace['id']}/reactivate", key).json()["status"] == "active"
    assert until(lambda: visit(stack, grace["shortcode"]).status == 302)


def test_expired_account_codes_are_gone(stack: Stack) -> None:
    acct = stack.account("business")
    code = create(stack, acct["api_key"], "https://example.com/acct")
    assert visit(stack, code["shortcode"]).status == 302
    stack.admin("set-plan", "--user-id", acct["user_id"], "--status", "expired")
    r = until(lambda: (lambda x: x if x.status == 410 else None)(visit(stack, code["shortcode"])))
    assert r is not None and b"expired" in r.body
    stack.admin("set-plan", "--user-id", acct["user_id"], "--status", "active")
    assert until(lambda: visit(stack, code["shortcode"]).status == 302)


def test_a_new_destination_reaches_the_redirect_within_seconds(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    code = create(stack, key, "https://example.com/old")
    for _ in range(4):  # warm every worker's cache with the old destination
        assert visit(stack, code["shortcode"]).headers["Location"] == "https://example.com/old"
    changed = time.monotonic()
    assert stack.api("PATCH", f"/api/codes/{code['id']}", key,
                     json_body={"url": "https://example.com/new"}).status == 200
    assert until(lambda: visit(stack, code["shortcode"]).headers["Location"] == "https://example.com/new")
    print(f"new destination served after {time.monotonic() - changed:.1f} s")


def test_scans_reach_analytics_through_the_queue(stack: Stack) -> None:
    key = stack.account("business")["api_key"]
    code = create(stack, key, "https://example.com/counted")
    plan = [("US", PHONE)] * 6 + [("CA", DESKTOP)] * 2 + [(None, PHONE)]
    started = time.monotonic()
    for country, ua in plan:
        assert visit(stack, code["shortcode"], ua=ua, country=country).status == 302
    for bot in ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Twitterbot/1.0",
                "facebookexternalhit/1.1"):
        assert visit(stack, code["shortcode"], ua=bot).status == 302
    assert visit(stack, code["shortcode"], "HEAD").status == 302

    def counted() -> Any:  # the scans, and the bots counted apart
        body = stack.api("GET", f"/api/codes/{code['id']}/analytics?range=7d", key).json()
        return body if body.get("total") == len(plan) and body.get("bots") == 3 else None

    body = until(counted)
    assert body is not None, "scans did not reach the analytics"
    print(f"analytics showed the scans after {time.monotonic() - started:.1f} s")
    assert body["timeseries"][-1] == {"bucket": day_bucket(int(time.time())), "scans": 9}
    assert body["by_country"] == [{"key": "US", "total": 6}, {"key": "Other", "total": 3}]
    assert body["by_device"] == [{"key": "mobile", "total": 7}, {"key": "desktop", "total": 2}]
    assert body["by_os"] == [{"key": "ios", "total": 7}, {"key": "other", "total": 2}]  # windows 2: the floor
    scope = stack.api("GET", "/api/analytics?range=7d", key).json()
    assert scope["total"] == 9 and scope["top_codes"][0]["id"] == code["id"]
    listed = stack.api("GET", f"/api/codes/{code['id']}", key).json()
    assert listed["scans_30d"] == 9


def _without_park_permission(resources: dict[str, Any]) -> None:
    policy = resource(resources, "AWS::IAM::Policy", "RedirectFnRole")
    policy["PolicyDocument"]["Statement"] = [
        st for st in policy["PolicyDocument"]["Statement"] if st["Action"] != "dynamodb:PutItem"]


@pytest.mark.parametrize("role", ["as synthesized", "without the PutItem statement"])
def test_scans_parked_during_an_sqs_outage_are_counted_by_the_schedule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, role: str) -> None:
    """The scans queue disappears: visitors are still redirected, their scans are
    parked in DynamoDB, and the scheduled drain counts them although no SQS batch
    ever reaches the aggregator again. Parking works only because the redirect's
    role allows that PutItem (on SCANPENDING# keys only): without the statement,
    IAM refuses the write, as AWS would, and the scans are lost."""
    monkeypatch.setenv("QRPRO_SCHEDULE_SCANS_SECONDS", "1")
    extra = () if role == "as synthesized" else (
        "--template", str(template_without(tmp_path / "template.json", _without_park_permission)))
    with running_stack(tmp_path / "data", "--in-memory", *extra) as stack:
        key = stack.account("business")["api_key"]
        code = create(stack, key, "https://example.com/outage")
        info = json.loads((stack.data_dir / "local.json").read_text())
        sqs = boto3.client("sqs", endpoint_url=info["endpoints"]["moto"])
        sqs.delete_queue(QueueUrl=info["queues"]["scans"]["url"])
        for _ in range(4):
            assert visit(stack, code["shortcode"]).status == 302

        def counted() -> Any:
            return stack.api("GET", f"/api/codes/{code['id']}/analytics?range=7d", key).json().get("total") == 4

        if role == "as synthesized":
            assert until(counted), "parked scans were not counted"
        else:
            assert not until(counted, seconds=8), "scans were parked without the permission"


def test_the_fanout_and_the_compaction_fold_the_panes_through_the_template(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the template: the fan-out on its schedule queues the open day, the compaction
    function takes the job from its queue and folds the day's panes into its aggregate items; the
    analytics read the panes before that, and the same after."""
    monkeypatch.setenv("QRPRO_SCHEDULE_FANOUT_SECONDS", "2")
    with running_stack(tmp_path / "data", "--in-memory") as stack:
        key = stack.account("business")["api_key"]
        code = create(stack, key, "https://example.com/panes")
        for _ in range(3):
            assert visit(stack, code["shortcode"]).status == 302
        info = json.loads((stack.data_dir / "local.json").read_text())
        client = boto3.client("dynamodb", endpoint_url=info["endpoints"]["dynamodb"], region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")

        def stored() -> int:
            item = client.get_item(TableName=info["table"], ConsistentRead=True, Key={
                "pk": {"S": f"AGG#{code['id']}"}, "sk": {"S": f"D#{day_bucket(int(time.time()))}"}}).get("Item")
            return int(item["total"]["N"]) if item else 0

        def analytics() -> Any:
            return stack.api("GET", f"/api/codes/{code['id']}/analytics?range=7d", key).json().get("total")

        assert until(lambda: analytics() == 3), "the scans did not reach the analytics"
        # a fence settles a minute after it is read (panes.SETTLE): the first fold follows it
        assert until(lambda: stored() == 3, seconds=180), "the compaction did not fold the day"
        assert analytics() == 3


def test_a_burst_on_a_code_with_a_scan_limit_sends_exactly_the_limit_to_its_url(stack: Stack) -> None:
    """100 visitors at once on a code with max_scans 10, over HTTP: exactly 10 reach its url, every
    other one the fallback (the redirect's conditional counter, not the counting behind it)."""
    from concurrent.futures import ThreadPoolExecutor

    key = stack.account("business")["api_key"]
    r = stack.api("POST", "/api/codes", key, json_body={
        "url": "https://example.com/offer",
        "routing": {"max_scans": 10, "fallback_url": "https://example.com/sold-out"}})
    assert r.status == 201, r.body
    shortcode = r.json()["shortcode"]

    def one(_: int) -> str:
        while True:
            answer = visit(stack, shortcode)
            if answer.status != 503:  # told to try again: a browser does
                return str(answer.headers["Location"])

    with ThreadPoolExecutor(max_workers=100) as pool:
        where = list(pool.map(one, range(100)))
    assert where.count("https://example.com/offer") == 10
    assert where.count("https://example.com/sold-out") == 90


def test_international_destinations_redirect_with_an_ascii_location(stack: Stack) -> None:
    """Issue 16 (1): stored in ASCII on write, so the gateway can write the header and the browser follows it."""
    key = stack.account()["api_key"]
    code = create(stack, key, "https://пример.рф/日本?q=é#ф")
    ascii_url = "https://xn--e1afmkfd.xn--p1ai/%E6%97%A5%E6%9C%AC?q=%C3%A9#%D1%84"
    assert code["url"] == ascii_url
    r = visit(stack, code["shortcode"])
    assert r.status == 302 and r.headers["Location"] == ascii_url
    patched = stack.api("PATCH", f"/api/codes/{code['id']}", key, json_body={"url": "https://bücher.example/ü"})
    assert patched.status == 200 and patched.json()["url"] == "https://xn--bcher-kva.example/%C3%BC"
    for bad in ("https://example.com/\u202egnp.exe", "https://exa\u200bmple.com/"):
        r = stack.api("PATCH", f"/api/codes/{code['id']}", key, json_body={"url": bad})
        assert r.status == 400 and r.json()["field"] == "url", r.body


def test_no_code_can_point_at_the_stacks_own_redirect_origin(stack: Stack) -> None:
    """Issue 16 (2): a loop would count a scan per hop; every spelling of the redirect origin is refused."""
    key = stack.account()["api_key"]
    code = create(stack, key, "https://example.com/start")
    port = stack.redirect_url.rsplit(":", 1)[1]
    hosts = ("127.0.0.1", "localhost", "127.1", "2130706433", "%31%32%37.0.0.1", "[::1]",
             "\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11")  # full-width 127.0.0.1
    for host in hosts:
        r = stack.api("PATCH", f"/api/codes/{code['id']}", key,
                      json_body={"url": f"http://{host}:{port}/{code['shortcode']}"})
        assert r.status == 400 and "loop" in r.json()["message"], (host, r.body)
    assert visit(stack, code["shortcode"]).headers["Location"] == "https://example.com/start"


# -- routing (docs/api.md section 14) --------------------------------------------------------------

ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/124.0 Mobile Safari/537.36"


def set_routing(stack: Stack, user_id: str, code: dict[str, Any], routing: dict[str, Any]) -> None:
    """``routing`` written on the code and SHORT# items as the codes API stores it (compact JSON),
    straight into the stack's DynamoDB."""
    info = json.loads((stack.data_dir / "local.json").read_text())
    client = boto3.client("dynamodb", endpoint_url=info["endpoints"]["dynamodb"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    text = json.dumps(routing, separators=(",", ":"))
    for pk, sk in ((f"USER#{user_id}", f"CODE#{code['id']}"), (f"SHORT#{code['shortcode']}", "SHORT")):
        client.update_item(TableName=info["table"], Key={"pk": {"S": pk}, "sk": {"S": sk}},
                           UpdateExpression="SET routing = :r", ConditionExpression="attribute_exists(pk)",
                           ExpressionAttributeValues={":r": {"S": text}})


def routed(stack: Stack, routing: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    acct = stack.account("business")
    code = create(stack, acct["api_key"], "https://example.com/default")
    set_routing(stack, acct["user_id"], code, routing)
    return acct["api_key"], code


def by_target(stack: Stack, key: str, code: dict[str, Any], total: int) -> Any:
    """The code's analytics once ``total`` scans are counted (None if they never are)."""
    def counted() -> Any:
        body = stack.api("GET", f"/api/codes/{code['id']}/analytics?range=7d", key).json()
        return body if body.get("total") == total else None
    return until(counted, seconds=60)


def test_rules_by_country_and_by_os_and_their_targets_counted(stack: Stack) -> None:
    key, code = routed(stack, {
        "rules": [{"if": {"country": ["DE", "AT"]}, "url": "https://example.de/"},
                  {"if": {"os": ["ios"]}, "url": "https://apps.apple.com/app/id1"},
                  {"if": {"os": ["android"]}, "url": "https://play.google.com/store/apps/details?id=x"}],
        "utm": {"source": "qr", "campaign": "spring"}})
    expected = [("DE", DESKTOP, "https://example.de/?utm_source=qr&utm_campaign=spring"),
                ("US", PHONE, "https://apps.apple.com/app/id1?utm_source=qr&utm_campaign=spring"),
                ("FR", ANDROID, "https://play.google.com/store/apps/details?id=x&utm_source=qr&utm_campaign=spring"),
                ("US", DESKTOP, "https://example.com/default?utm_source=qr&utm_campaign=spring")]
    assert until(lambda: visit(stack, code["shortcode"], country="DE", ua=DESKTOP).headers["Location"]
                 == expected[0][2])  # the redirect's cache has seen the routing
    for country, ua, url in expected * 5:
        r = visit(stack, code["shortcode"], ua=ua, country=country)
        assert (r.status, r.headers["Location"], r.headers["Cache-Control"]) == (302, url, "no-store")
    body = by_target(stack, key, code, 21)
    assert body is not None, "scans did not reach the analytics"
    assert body["by_target"] == [{"key": "rule:0", "total": 6}, {"key": "default", "total": 5},
                                 {"key": "rule:1", "total": 5}, {"key": "rule:2", "total": 5}]
    assert sum(t["total"] for t in body["by_target"]) == body["total"]


def test_a_split_of_a_thousand_scans_is_within_five_sigma(stack: Stack) -> None:
    key, code = routed(stack, {"split": [{"url": "https://example.com/a", "weight": 30},
                                         {"url": "https://example.com/b", "weight": 70}]})
    assert until(lambda: visit(stack, code["shortcode"], "HEAD").headers["Location"] != "https://example.com/default")
    n, seen = 1000, {"https://example.com/a": 0, "https://example.com/b": 0}
    for _ in range(n):
        seen[visit(stack, code["shortcode"]).headers["Location"]] += 1
    sigma = (n * 0.3 * 0.7) ** 0.5
    assert abs(seen["https://example.com/a"] - 0.3 * n) < 5 * sigma, seen
    body = by_target(stack, key, code, n)
    assert body is not None, "scans did not reach the analytics"
    assert {t["key"]: t["total"] for t in body["by_target"]} == {
        "split:0": seen["https://example.com/a"], "split:1": seen["https://example.com/b"]}
    assert sum(t["total"] for t in body["by_target"]) == body["total"] == n


def test_starts_at_and_expires_at_around_now(stack: Stack) -> None:
    now = int(time.time())
    _, soon = routed(stack, {"starts_at": now + 6})
    r = until(lambda: (lambda x: x if x.status == 404 else None)(visit(stack, soon["shortcode"])))
    assert r is not None and b"not active yet" in r.body and r.headers["Cache-Control"] == "no-store"
    assert b"QR Pro" not in r.body and "Location" not in r.headers
    assert until(lambda: visit(stack, soon["shortcode"]).status == 302)  # starts_at passed (and the cache)

    _, ending = routed(stack, {"expires_at": now + 6})
    assert until(lambda: visit(stack, ending["shortcode"]).status == 410)
    r = visit(stack, ending["shortcode"])
    assert b"ended" in r.body and r.headers["Cache-Control"] == "no-store" and "Location" not in r.headers
    _, fallback = routed(stack, {"expires_at": now + 6, "fallback_url": "https://example.com/ended"})
    assert until(lambda: visit(stack, fallback["shortcode"]).headers.get("Location") == "https://example.com/ended")


def test_max_scans_reached_then_the_fallback(stack: Stack) -> None:
    key, code = routed(stack, {"max_scans": 5, "fallback_url": "https://example.com/sold-out"})
    assert until(lambda: visit(stack, code["shortcode"], "HEAD").status == 302)
    for _ in range(5):
        assert visit(stack, code["shortcode"]).headers["Location"] == "https://example.com/default"
    assert by_target(stack, key, code, 5) is not None
    # counted by the aggregator; the redirect sees it within its cache window
    assert until(lambda: visit(stack, code["shortcode"], "HEAD").headers["Location"] == "https://example.com/sold-out")
    assert visit(stack, code["shortcode"]).headers["Location"] == "https://example.com/sold-out"
    body = by_target(stack, key, code, 6)
    assert body is not None and body["by_target"][0] == {"key": "default", "total": 5}
    assert body["by_target"][1:] == [{"key": "other", "total": 1}]  # fallback x1: under the noise floor
