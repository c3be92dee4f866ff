"""Counting through panes (docs/analytics.md): one item per scope, day and batch,
no marker, no transaction; the compaction sets the aggregates; readers fold the
open days themselves. Against DynamoDB Local and moto: the same analytics as
the markers' design, exact under redelivery of any subset, throttling and a
crash between the write and the acknowledgement."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.compaction import handler as compaction
from qrpro.data import caps, edge, panes
from qrpro.data import keys as k
from qrpro.data import table as tables
from qrpro.domain.analytics import HOURLY_RANGE
from qrpro.domain.clock import day_bucket, month_bucket
from qrpro.domain.plans import plan
from qrpro.services import codes
from qrpro.services import scans as scan_service
from qrpro_cli.runtime import FakeContext
from tests.conftest import reset_caches
from tests.integration.test_scans import (
    all_items,
    events_of,
    get,
    messages_for,
    queue,  # noqa: F401 (the scans queue fixture, under sqs below)
    receive_all,
    run_consumer,
    scan,
    sent_to,
)

DAY = 86_400


@pytest.fixture
def sqs(queue: str) -> str:  # noqa: F811
    return queue


@pytest.fixture
def on(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Panes from the first day of 2000: every scan of these tests."""
    monkeypatch.setenv("PANES_FROM", "2000-01-01")
    reset_caches()
    panes._marked.clear()
    scan_service._cap_done.clear()
    monkeypatch.setattr(time, "sleep", lambda s: None)  # retries' backoff


def off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANES_FROM", "")
    reset_caches()


def items(prefix: str) -> list[dict[str, Any]]:
    return [i for i in all_items() if str(i["pk"]).startswith(prefix)]


def compact(now: int | None = None) -> int:
    return scan_service.compact(now or int(time.time()))[0]


class Faulty:
    """The real client; ``faults`` are consumed one per PutItem of a pane: "throttle" (nothing
    written), "lost" (written, but the caller sees an error), None (pass through)."""

    def __init__(self, real: Any, faults: list[str | None]) -> None:
        self.real, self.faults, self.puts = real, list(faults), 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_item(self, **kw: Any) -> Any:
        if not kw["Item"]["pk"]["S"].startswith("PANE#"):
            return self.real.put_item(**kw)
        self.puts += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault == "throttle":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutItem")
        out = self.real.put_item(**kw)
        if fault == "lost":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "no answer"}}, "PutItem")
        return out


# -- the aggregator's writes and the compaction -------------------------------------------------------

def test_a_batch_is_one_pane_and_the_compaction_sets_the_aggregates(on: None) -> None:
    now = int(time.time())
    msgs = messages_for("code-a", 7) + messages_for("code-b", 3, country="CA", device="tablet")
    assert run_consumer(msgs, batch=10) == []
    [pane] = items("PANE#")
    assert pane["pk"] == k.pk_pane("USER#u", day_bucket(now)) and len(str(pane["s"]).split("\n")) == 10
    assert len(items("OPEN#")) == 1
    assert items("SCAN#") == [] and items("AGG#") == [] and items("SAGG#") == []  # nothing counted yet
    # no time finer than the day kept for a plan without hourly analytics
    assert {row.split(" ")[5] for row in str(pane["s"]).split("\n")} == {"-"}

    assert compact(now) == 1
    today = day_bucket(now)
    assert get(k.pk_code_agg("code-a"), k.sk_day(today))["total"] == 7
    b = get(k.pk_code_agg("code-b"), k.sk_day(today))
    assert (b["total"], b["c_CA"], b["d_tablet"], b["t_default"], b["n"]) == (3, 3, 3, 3, 3)
    scope_day = get(k.pk_scope_agg("USER#u"), k.sk_day(today))
    assert (scope_day["total"], scope_day["c_US"], scope_day["c_CA"]) == (10, 7, 3)
    assert scope_day["ttl"] == panes.day_end(today) + plan("business").retention_days * DAY
    for code_id, n in (("code-a", 7), ("code-b", 3)):
        assert get(k.pk_scope_agg("USER#u"), k.sk_codes_day(today, code_id))[f"k_{code_id}"] == n
    month = get(k.pk_scope_agg("USER#u"), k.sk_month(month_bucket(now)))
    assert month[f"u_{today[8:]}"] == 10 and "used" not in month
    assert caps.month_usage("USER#u", month_bucket(now)).used == 10
    assert get(k.pk_code_agg("code-a"), k.sk_hour(f"{today}-00")) == {}  # business: no hourly items
    assert len(items("OPEN#")) == 1  # today runs on: still open


def test_hourly_plans_keep_the_hour_in_their_rows_and_items(on: None) -> None:
    now = int(time.time())
    assert run_consumer(messages_for("code-t", 2, scope="TEAM#t", plan_name="team", now=now)) == []
    hour = time.strftime("%Y-%m-%d-%H", time.gmtime(now))
    compact(now)
    assert get(k.pk_code_agg("code-t"), k.sk_hour(hour))["total"] == 2
    assert get(k.pk_scope_agg("TEAM#t"), k.sk_hour(hour))["total"] == 2


def test_the_compaction_is_idempotent_writes_only_what_changed_and_never_goes_back(
        on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    assert run_consumer(messages_for("code-a", 4) + messages_for("code-b", 2)) == []
    compact(now)
    before = {(i["pk"], i["sk"]): i for i in items("AGG#") + items("SAGG#")}
    writes: list[str] = []
    real = panes.ddb()

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def update_item(self, **kw: Any) -> Any:
            writes.append(kw["Key"]["pk"]["S"])
            return real.update_item(**kw)

    monkeypatch.setattr(panes, "ddb", lambda: Spy())
    compact(now)  # nothing new: nothing written
    assert writes == []
    assert run_consumer(messages_for("code-a", 1)) == []
    compact(now)  # one more scan of code-a: its items and the scope's, not code-b's
    assert k.pk_code_agg("code-b") not in writes and k.pk_code_agg("code-a") in writes
    assert get(k.pk_code_agg("code-a"), k.sk_day(day_bucket(now)))["total"] == 5
    # a slow run that read fewer panes writes after a newer one: the guard keeps the newer values
    scans = panes.read("USER#u", day_bucket(now))
    panes.set_days(scans[:3])
    after = {(i["pk"], i["sk"]): i for i in items("AGG#") + items("SAGG#")}
    assert after[(k.pk_code_agg("code-a"), k.sk_day(day_bucket(now)))]["total"] == 5
    assert after[(k.pk_code_agg("code-b"), k.sk_day(day_bucket(now)))] == \
        before[(k.pk_code_agg("code-b"), k.sk_day(day_bucket(now)))]


def test_a_day_that_fails_to_compact_does_not_hold_up_the_others(on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_consumer(messages_for("code-1", 2, scope="USER#a") + messages_for("code-2", 3, scope="USER#b")) == []
    real = panes.read

    def read(scope: str, day: str, consistent: bool = False) -> Any:
        if scope == "USER#a":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Query")
        return real(scope, day, consistent)

    monkeypatch.setattr(panes, "read", read)
    with pytest.raises(ClientError):  # the invocation fails (EventBridge retries it, the alarm sees it)
        compact()
    today = day_bucket(int(time.time()))
    assert get(k.pk_code_agg("code-2"), k.sk_day(today))["total"] == 3
    monkeypatch.setattr(panes, "read", real)
    compact()
    assert get(k.pk_code_agg("code-1"), k.sk_day(today))["total"] == 2


def test_an_ended_day_closes_unless_a_pane_arrived_after_the_run_read_it(on: None) -> None:
    now = int(time.time())
    yesterday = now - DAY
    day = day_bucket(yesterday)
    assert run_consumer(messages_for("code-y", 3, now=yesterday)) == []
    [bucket] = panes.open_buckets()
    assert run_consumer(messages_for("code-y", 2, now=yesterday)) == []  # a late scan: moves the mark
    assert panes.close(bucket) is False
    later = panes.day_end(day) + panes.CLOSE_AFTER
    compact(max(now, later))
    assert items("OPEN#") == []  # closed after folding every pane
    assert get(k.pk_code_agg("code-y"), k.sk_day(day))["total"] == 5
    # a redelivery days later reopens the day, and the next run counts it once more... or not at all
    msgs = messages_for("code-y", 1, now=yesterday)
    assert run_consumer(msgs + msgs) == []
    assert len(items("OPEN#")) == 1
    compact(max(now, later))
    assert get(k.pk_code_agg("code-y"), k.sk_day(day))["total"] == 6 and items("OPEN#") == []


def test_redelivery_of_any_subset_duplicates_and_faults_count_once(on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    faults: list[str | None] = ["throttle", None, "lost", "throttle", None, "lost", "lost", None] * 5
    fake = Faulty(panes.ddb(), faults)
    monkeypatch.setattr(panes, "ddb", lambda: fake)
    pending = messages_for("code-f", 60) + messages_for("code-g", 40, country="JP", device="desktop")
    rounds = 0
    while pending and rounds < 50:
        rounds += 1
        failed = set(run_consumer(pending, batch=7))
        # SQS at-least-once: a redelivery may also bring back messages already handled,
        # and a message may arrive twice (another id, the same scan)
        again = [{"MessageId": str(uuid.uuid4()), "Body": m["Body"]} for m in pending[:2]]
        pending = [m for m in pending if m["MessageId"] in failed] + pending[:3] + again
        if not failed:
            break
    assert rounds > 1 and fake.puts > 15
    today = day_bucket(int(time.time()))
    # the readers' fold of the open day, before any compaction
    live = panes.live("USER#u")
    assert live.items[(k.pk_code_agg("code-f"), k.sk_day(today))]["total"] == 60
    g = live.items[(k.pk_code_agg("code-g"), k.sk_day(today))]
    assert (g["total"], g["c_JP"], g["d_desktop"]) == (40, 40, 40)
    compact()
    assert get(k.pk_code_agg("code-f"), k.sk_day(today))["total"] == 60
    assert get(k.pk_code_agg("code-g"), k.sk_day(today))["total"] == 40
    assert caps.scans_used("USER#u", month_bucket(int(time.time()))) == 100


def test_days_before_panes_from_are_counted_with_markers_and_too_old_scans_are_dropped(
        on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    monkeypatch.setenv("PANES_FROM", day_bucket(now))
    reset_caches()
    assert run_consumer(messages_for("code-old", 2, now=now - DAY) + messages_for("code-new", 3, now=now)) == []
    assert get(k.pk_code_agg("code-old"), k.sk_day(day_bucket(now - DAY)))["total"] == 2  # at once, as before
    assert len(items("SCAN#")) == 2 and len(items("PANE#")) == 1
    monkeypatch.setenv("PANES_FROM", "2000-01-01")
    reset_caches()
    assert run_consumer(messages_for("code-late", 1, now=now - (panes.HORIZON_DAYS + 1) * DAY)) == []
    assert len(items("PANE#")) == 1  # acknowledged and dropped: no fold could keep it once


def test_parked_scans_are_counted_through_panes_and_their_items_deleted(on: None) -> None:
    for m in messages_for("code-p", 3):
        boto3.client("dynamodb").put_item(TableName=tables.table(), Item={
            "pk": {"S": k.pk_pending(0)}, "sk": {"S": json.loads(m["Body"])["id"]}, "scan": {"S": m["Body"]}})
    assert scan_service.drain_pending(int(time.time())) == 3
    assert items("SCANPENDING#") == []
    compact()
    assert get(k.pk_code_agg("code-p"), k.sk_day(day_bucket(int(time.time()))))["total"] == 3


def test_the_compaction_function_folds_the_open_days_and_reports_those_it_left(
        on: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    assert run_consumer(messages_for("code-h", 2) + messages_for("code-i", 1, scope="USER#i")) == []
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    short = FakeContext("compaction", "r0", deadline=time.monotonic() + scan_service.COMPACTION_SPARE - 1)
    assert compaction.handler(scheduled, short) == {"compacted": 0, "left": 2}
    context = FakeContext("compaction", "r1", deadline=time.monotonic() + 14 * 60)  # the template's timeout
    assert compaction.handler(scheduled, context) == {"compacted": 2, "left": 0}
    assert get(k.pk_code_agg("code-h"), k.sk_day(day_bucket(int(time.time()))))["total"] == 2
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m[compaction.DAYS_LEFT] for m in emitted] in ([2.0, 0.0], [[2.0], [0.0]])


def test_a_failed_write_fails_its_day_after_the_others_of_the_day_went_through(
        on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compaction writes a day's items in parallel (``panes.WRITERS``): one throttled
    write fails the run (EventBridge retries it); the rest are written, and the retry
    writes only what is missing."""
    assert run_consumer(messages_for("code-w", 2)) == []
    today = day_bucket(int(time.time()))
    real, tried = panes._set, []

    def throttled_scope_day(pk: str, sk: str, *args: Any, **kw: Any) -> None:
        tried.append((pk, sk))
        if pk == k.pk_scope_agg("USER#u") and sk == k.sk_day(today):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")
        real(pk, sk, *args, **kw)

    monkeypatch.setattr(panes, "_set", throttled_scope_day)
    with pytest.raises(ClientError):
        compact()
    assert len(tried) >= 3 and get(k.pk_code_agg("code-w"), k.sk_day(today))["total"] == 2
    assert get(k.pk_scope_agg("USER#u"), k.sk_day(today)) == {}
    assert [i for i in items("SAGG#") if str(i["sk"]).startswith("K#")]  # written after the failed one
    monkeypatch.setattr(panes, "_set", real)
    assert compact() == 1
    assert get(k.pk_scope_agg("USER#u"), k.sk_day(today))["total"] == 2


def test_a_compaction_short_of_time_leaves_days_to_the_next_run(on: None) -> None:
    for scope in ("USER#a", "USER#b", "USER#c"):
        assert run_consumer(messages_for("code-" + scope[-1], 1, scope=scope)) == []
    left = iter([600.0, 600.0, scan_service.COMPACTION_SPARE - 1])
    assert scan_service.compact(int(time.time()), lambda: next(left)) == (2, 1)
    today = day_bucket(int(time.time()))
    assert sum(bool(get(k.pk_code_agg("code-" + c), k.sk_day(today))) for c in "abc") == 2
    assert compact() == 3
    assert all(get(k.pk_code_agg("code-" + c), k.sk_day(today))["total"] == 1 for c in "abc")


def test_a_busy_day_is_read_from_its_aggregates(on: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers fold a day's panes up to LIVE_LIMIT scans; past it they read the aggregates, one
    compaction behind at most (and once a compaction counted more, read no pane of the day)."""
    monkeypatch.setattr(panes, "LIVE_LIMIT", 5)
    month, today = month_bucket(int(time.time())), day_bucket(int(time.time()))
    assert run_consumer(messages_for("code-b", 4)) == []
    assert caps.scans_used("USER#u", month) == 4  # folded from the panes
    compact()
    assert run_consumer(messages_for("code-b", 3)) == []
    assert caps.scans_used("USER#u", month) == 4  # 7 > 5: the aggregates, one run behind
    compact()
    assert panes.live_days("USER#u") == [] and caps.scans_used("USER#u", month) == 7  # no pane read
    assert run_consumer(messages_for("code-b", 2)) == []
    assert caps.scans_used("USER#u", month) == 7
    compact()
    assert caps.scans_used("USER#u", month) == 9
    assert get(k.pk_code_agg("code-b"), k.sk_day(today))["total"] == 9
    # a day marked anew (as after its close, by a late scan) is read only up to the limit
    boto3.client("dynamodb").update_item(TableName=tables.table(), UpdateExpression="REMOVE n",
                                         Key={"pk": {"S": k.pk_open("USER#u")}, "sk": {"S": f"USER#u#{today}"}})
    assert panes.live_days("USER#u") == [today] and panes.live("USER#u").days == frozenset()
    assert run_consumer(messages_for("code-b", 1)) == []
    assert caps.scans_used("USER#u", month) == 9


# -- lifetime counts, max_scans and the monthly cap --------------------------------------------------------

def test_lifetime_counts_reach_the_redirect_and_max_scans_stays_exact(on: None, sqs: str, api: Any,
                                                                      make_account: Any) -> None:
    acct = make_account("business")
    now = int(time.time())
    plain = api.request("POST", "/api/codes", acct.token, json={"url": "https://example.com/p"}).json()
    capped = api.request("POST", "/api/codes", acct.token,
                         json={"url": "https://example.com/c", "routing": {"max_scans": 3}}).json()
    for _ in range(2):
        assert scan(plain["shortcode"])["statusCode"] == 302
    for _ in range(3):
        assert scan(capped["shortcode"])["statusCode"] == 302
    msgs = receive_all(sqs)
    assert sorted(json.loads(m["Body"]).get("m", 0) for m in msgs) == [0, 0, 1, 1, 1]
    assert run_consumer(msgs + msgs[:2]) == []
    # the limited code's count is exact at once; the plain one's waits for the compaction
    assert edge.lookup_short(capped["shortcode"]).scans_total == 3  # type: ignore[union-attr]
    assert edge.lookup_short(plain["shortcode"]).scans_total == 0  # type: ignore[union-attr]
    compact(now)
    assert edge.lookup_short(plain["shortcode"]).scans_total == 2  # type: ignore[union-attr]
    assert edge.lookup_short(capped["shortcode"]).scans_total == 3  # type: ignore[union-attr]
    short = get(k.pk_short(plain["shortcode"]), "SHORT")
    assert short[panes.lifetime_attr(day_bucket(now))] == 2 and "scans_total" not in short
    # days past the horizon are added into scans_total by the next run that touches the code
    old = panes.lifetime_attr(day_bucket(now - (panes.HORIZON_DAYS + 5) * DAY))
    boto3.client("dynamodb").update_item(TableName=tables.table(), Key={"pk": {"S": k.pk_short(plain["shortcode"])},
                                                                        "sk": {"S": "SHORT"}},
                                         UpdateExpression="SET #o = :n", ExpressionAttributeNames={"#o": old},
                                         ExpressionAttributeValues={":n": {"N": "40"}})
    assert scan(plain["shortcode"])["statusCode"] == 302
    assert run_consumer(receive_all(sqs)) == []
    compact(now)
    short = get(k.pk_short(plain["shortcode"]), "SHORT")
    assert old not in short and short["scans_total"] == 40 and short[panes.lifetime_attr(day_bucket(now))] == 3
    assert edge.lookup_short(plain["shortcode"]).scans_total == 43  # type: ignore[union-attr]


def test_the_cap_is_checked_by_the_compaction_once(on: None, sqs: str, make_account: Any) -> None:
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    scope = make_account("solo", email=email).caller().scope
    now = int(time.time())
    month = month_bucket(now)
    cap = plan("solo").scans_per_month
    boto3.client("dynamodb").put_item(TableName=tables.table(), Item={  # counted with markers earlier
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_month(month)}, "used": {"N": str(cap - 3)}})
    assert run_consumer(messages_for("c1", 4, scope=scope, plan_name="solo")) == []
    assert events_of(scope) == [] and caps.scans_used(scope, month) == cap + 1  # usage reads the open day
    compact(now)
    assert [e["data"] for e in events_of(scope)] == [{"month": month, "used": cap + 1, "cap": cap, "plan": "solo"}]
    assert len(sent_to(email)) == 1
    for _ in range(2):
        scan_service._cap_done.clear()
        assert run_consumer(messages_for("c1", 1, scope=scope, plan_name="solo")) == []
        compact(now)
    assert len(events_of(scope)) == 1 and len(sent_to(email)) == 1
    assert caps.scans_used(scope, month) == cap + 3


# -- the same analytics as the markers' design --------------------------------------------------------------

def workload(scope: str, made: list[dict[str, Any]], plan_name: str, now: int) -> list[dict[str, Any]]:
    """A fixed mix: three codes, two days, countries, devices and routing targets."""
    out = []
    for i in range(120):
        code = made[i % 3 if i % 5 else 0]
        at = now - DAY if i % 4 == 0 else now
        body = edge.scan_message(code["id"], scope, plan_name, at, ["US", "DE", "FR", "BR"][i % 4 if i % 7 else 0],
                                 ["mobile", "desktop", "tablet", "unknown"][i % 3], code["shortcode"],
                                 ["default", "rule:0", "split:1"][i % 3], codes=3)
        out.append({"MessageId": str(uuid.uuid4()), "Body": body})
    return out


def views(api: Any, token: str, made: list[dict[str, Any]]) -> dict[str, Any]:
    """What the API answers about an account's scans, code ids replaced by their index."""
    index = {c["id"]: i for i, c in enumerate(made)}
    paths = {"scope": "/api/analytics?range=7d",
             "scope, hourly": f"/api/analytics?range={HOURLY_RANGE}&granularity=hour",
             "codes": "/api/codes", "usage": "/api/user/usage",
             **{f"code {i}": f"/api/codes/{c['id']}/analytics" for i, c in enumerate(made)}}
    out: dict[str, Any] = {}
    for name, path in paths.items():
        r = api.request("GET", path, token)
        assert r.status == 200, (path, r.body)
        body = r.json()
        if path == "/api/codes":
            body = sorted((index[c["id"]], c["scans_30d"]) for c in body["codes"])
        elif path == "/api/user/usage":
            body = body["scans_this_month"]["used"]
        elif "top_codes" in body:
            body["top_codes"] = sorted((index[t["id"]], t["total"]) for t in body["top_codes"])  # ties: by id
        out[name] = body
    return out


def test_the_api_answers_the_same_as_with_markers_before_and_after_compaction(
        on: None, api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    accounts = {}
    for mode in ("markers", "panes"):
        acct = make_account("agency")
        made = [codes.create(acct.caller(), {"url": f"https://example.com/{i}"}, now) for i in range(3)]
        accounts[mode] = (acct, made)
    off(monkeypatch)
    acct, made = accounts["markers"]
    assert run_consumer(workload(acct.caller().scope, made, "agency", now), batch=9) == []
    expected = views(api, acct.token, made)
    monkeypatch.setenv("PANES_FROM", "2000-01-01")
    reset_caches()
    assert views(api, acct.token, made) == expected  # days counted with markers read the same with panes on
    acct, made = accounts["panes"]
    msgs = workload(acct.caller().scope, made, "agency", now)
    assert run_consumer(msgs + msgs[:17], batch=9) == []
    assert items("AGG#" + made[0]["id"]) == []
    assert views(api, acct.token, made) == expected  # open days, from their panes
    compact(now)
    assert views(api, acct.token, made) == expected  # compacted, the days still open
    compact(max(now, panes.day_end(day_bucket(now - DAY)) + panes.CLOSE_AFTER))
    assert [b.day for b in panes.open_buckets()] == [day_bucket(now)]  # yesterday closed
    assert views(api, acct.token, made) == expected
