"""How a scan is counted (docs/analytics.md): panes under sequence numbers, folded
in bounded steps from a checkpoint, each scan once. Against DynamoDB Local and
moto: exact under redelivery of any subset, duplicates, throttling, a crash
between a write and its acknowledgement, a crash in the middle of a step, two
folds of the same day at once, a copy arriving after its first copy was
folded, and the takeover of panes of the design before sequence numbers;
readers see what no step has folded yet; the API answers the same before and
after folding."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.compaction import handler as compaction
from lambdas.fanout import handler as fanout
from qrpro.data import caps, counting, edge, panes
from qrpro.data import keys as k
from qrpro.data import table as tables
from qrpro.domain import scan_codec as codec
from qrpro.domain.analytics import HOURLY_RANGE
from qrpro.domain.clock import day_bucket, month_bucket
from qrpro.domain.plans import plan
from qrpro.domain.scan_codec import Job
from qrpro.services import codes
from qrpro.services import scans as scan_service
from qrpro_cli.runtime import FakeContext
from tests.helpers.scans import (
    counter,
    everything_sent,
    fold_all,
    get,
    items,
    messages_for,
    run_consumer,
    scan,
)

DAY = 86_400


@pytest.fixture
def clean(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)  # retries' backoff


def today() -> str:
    return day_bucket(int(time.time()))


def total(code_id: str, day: str | None = None) -> int:
    return int(get(k.pk_code_agg(code_id), k.sk_day(day or today())).get("total", 0))


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


# -- the aggregator's writes --------------------------------------------------------------------------------

def test_a_batch_is_one_pane_per_scope_and_day_under_one_take_of_the_counter(clean: None) -> None:
    now = int(time.time())
    msgs = (messages_for("code-a", 7) + messages_for("code-b", 3, country="CA", device="tablet")
            + messages_for("code-c", 2, scope="USER#v"))
    assert run_consumer(msgs, batch=20) == []
    panes_ = items("PANE#")
    assert sorted(str(p["sk"]) for p in panes_) == [codec.pane_sk(0), codec.pane_sk(1)]
    assert counter() == 2  # one take of two numbers for the batch
    mine = next(p for p in panes_ if p["pk"] == k.pk_pane("USER#u", day_bucket(now)))
    assert len(str(mine["s"]).split("\n")) == 10 and mine["p"] == "business" and mine["w"] == 0
    # no time finer than the day kept for a plan without hourly analytics
    assert {row.split(" ")[5] for row in str(mine["s"]).split("\n")} == {codec.NO_HOUR}
    assert len(items("OPEN#")) == 2
    assert items("AGG#") == [] and items("SAGG#") == [] and items("SCAN#") == []  # no marker, nothing counted yet


def test_hourly_plans_keep_the_hour_in_their_rows_and_items(clean: None) -> None:
    now = int(time.time())
    assert run_consumer(messages_for("code-t", 2, scope="TEAM#t", plan_name="team", now=now)) == []
    hour = time.strftime("%Y-%m-%d-%H", time.gmtime(now))
    fold_all()
    assert get(k.pk_code_agg("code-t"), k.sk_hour(hour))["total"] == 2
    assert get(k.pk_scope_agg("TEAM#t"), k.sk_hour(hour))["total"] == 2


def test_redelivery_of_any_subset_duplicates_and_faults_count_once(clean: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    faults: list[str | None] = ["throttle", None, "lost", "throttle", None, "lost", "lost", None] * 5
    fake = Faulty(panes.ddb(), faults)
    monkeypatch.setattr(panes, "ddb", lambda: fake)
    pending = messages_for("code-f", 60) + messages_for("code-g", 40, country="JP", device="desktop")
    rounds = 0
    while pending and rounds < 50:
        rounds += 1
        failed = set(run_consumer(pending, batch=7))
        if rounds % 2:
            fold_all()  # the compaction runs between deliveries: copies land after their first copy was folded
        # SQS at-least-once: a redelivery may also bring back messages already handled,
        # and a message may arrive twice (another id, the same scan)
        again = [{"MessageId": str(uuid.uuid4()), "Body": m["Body"]} for m in pending[:2]]
        pending = [m for m in pending if m["MessageId"] in failed] + pending[:3] + again
        if not failed:
            break
    assert rounds > 1 and fake.puts > 15
    live = panes.live("USER#u")  # readers: what no step folded yet, on top of the aggregates
    stored = [get(k.pk_code_agg("code-f"), k.sk_day(today()))]
    assert live.merge(k.pk_code_agg("code-f"), [i for i in stored if i], k.sk_day(today()),
                      k.sk_day(today()))[0]["total"] == 60
    fold_all()
    assert total("code-f") == 60
    g = get(k.pk_code_agg("code-g"), k.sk_day(today()))
    assert (g["total"], g["c_JP"], g["d_desktop"]) == (40, 40, 40)
    assert caps.scans_used("USER#u", month_bucket(int(time.time()))) == 100


def test_a_copy_sent_within_its_window_is_found_and_earlier_panes_are_not_read(clean: None) -> None:
    """A message's copies share its SentTimestamp: a copy of a recent message is checked only
    against the panes written since its window's fence, and still counted once."""
    now = int(time.time())
    panes.record_fence(now - 3600)
    assert run_consumer(messages_for("code-z", 2)) == []  # pane 0: older than what follows
    panes._fences.update(at=-1e9)
    panes.record_fence(now - 300)  # every number below 1 was taken before this
    msgs = messages_for("code-w", 5)
    for m in msgs:
        m["Attributes"] = {"SentTimestamp": str(now * 1000)}
    assert run_consumer(msgs) == []
    assert fold_all() == 7
    assert run_consumer(msgs[:3]) == []  # SQS delivers three of them again, after the fold
    newest = max(items("PANE#"), key=lambda p: str(p["sk"]))
    assert newest["w"] == 1  # its copies can only be in panes from 1 on: pane 0 is never read for it
    assert fold_all() == 0 and total("code-w") == 5 and total("code-z") == 2


def test_a_scan_the_redirect_sent_again_is_checked_against_its_whole_hour(clean: None) -> None:
    msgs = messages_for("code-r", 4)
    assert run_consumer(msgs) == []
    fold_all()
    again = [{"MessageId": str(uuid.uuid4()), "Body": codec.resent(m["Body"]),
              "Attributes": {"SentTimestamp": str(int(time.time() * 1000))}} for m in msgs[:2]]
    assert run_consumer(again) == []
    assert fold_all() == 0 and total("code-r") == 4


def test_too_old_scans_are_dropped(clean: None) -> None:
    now = int(time.time())
    assert run_consumer(messages_for("code-late", 1, now=now - (panes.HORIZON_DAYS + 1) * DAY)) == []
    assert items("PANE#") == []  # acknowledged and dropped: no fold could keep it once


def test_parked_scans_are_written_as_panes_and_their_items_deleted(clean: None) -> None:
    for m in messages_for("code-p", 3):
        boto3.client("dynamodb").put_item(TableName=tables.table(), Item={
            "pk": {"S": k.pk_pending(0)}, "sk": {"S": json.loads(m["Body"])["id"]}, "scan": {"S": m["Body"]}})
    assert scan_service.drain_pending(int(time.time())) == 3
    assert items("SCANPENDING#") == []
    fold_all()
    assert total("code-p") == 3


# -- the compaction ---------------------------------------------------------------------------------------------

def test_a_step_reads_only_the_panes_since_the_checkpoint(clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_consumer(messages_for("code-a", 4) + messages_for("code-b", 2)) == []
    assert fold_all() == 6
    cp = panes.checkpoint("USER#u", today())
    assert cp.ck == counter() and cp.stage is None
    read: list[tuple[int, int | None]] = []
    real = panes.panes

    def spy(scope: str, day: str, low: int, high: int | None = None, consistent: bool = True) -> Any:
        read.append((low, high))
        return real(scope, day, low, high, consistent)

    monkeypatch.setattr(panes, "panes", spy)
    assert fold_all() == 0  # nothing new: nothing read past the checkpoint, nothing written
    assert all(low == cp.ck for low, _ in read)
    assert run_consumer(messages_for("code-a", 1)) == []
    assert fold_all() == 1
    assert total("code-a") == 5 and total("code-b") == 2


def test_a_crash_in_the_middle_of_a_step_is_finished_by_the_next_fold_once(
        clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_consumer(messages_for("code-a", 3) + messages_for("code-b", 5)) == []
    writes = []
    real_add_once = counting.add_once

    def crash_after_two(*args: Any, **kw: Any) -> Any:
        if len(writes) == 2:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "crash"}}, "UpdateItem")
        writes.append(args[:2])
        return real_add_once(*args, **kw)

    monkeypatch.setattr(counting, "add_once", crash_after_two)
    monkeypatch.setattr(counting, "WRITERS", 1)
    with pytest.raises(ClientError):
        fold_all()
    cp = panes.checkpoint("USER#u", today())
    assert cp.stage is not None and cp.ck == 0  # announced, not finished
    monkeypatch.setattr(counting, "add_once", real_add_once)
    fold_all()  # finishes the announced step: the two items written before the crash are not added twice
    assert panes.checkpoint("USER#u", today()).stage is None
    assert (total("code-a"), total("code-b")) == (3, 5)
    assert get(k.pk_scope_agg("USER#u"), k.sk_day(today()))["total"] == 8
    assert caps.month_usage("USER#u", today()[:7]).used == 8


def test_two_folds_of_the_same_day_at_once_count_each_scan_once(clean: None) -> None:
    for _ in range(6):
        assert run_consumer(messages_for("code-a", 9) + messages_for("code-b", 4)) == []
    fence = counter()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            scan_service.fold(Job("USER#u", today(), fence), int(time.time()), eager=True)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (total("code-a"), total("code-b")) == (54, 24)
    assert caps.month_usage("USER#u", today()[:7]).used == 78


def test_a_busy_day_folds_in_bounded_steps(clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_service, "STEP_SCANS", 25)
    for _ in range(10):
        assert run_consumer(messages_for("code-busy", 10)) == []
    seen: list[int] = []
    real = scan_service._step

    def step(scope: str, day: str, ck: int, to: int, now: int) -> int:
        out = real(scope, day, ck, to, now)
        seen.append(out)
        return out

    monkeypatch.setattr(scan_service, "_step", step)
    done = scan_service.fold(Job("USER#u", today(), counter()), int(time.time()), eager=True)
    assert done.steps == 4 and max(seen) <= 30 and sum(seen) == 100 and done.caught_up
    assert total("code-busy") == 100


def test_a_fold_short_of_time_stops_between_steps_and_the_next_job_goes_on(
        clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_service, "STEP_SCANS", 10)
    for _ in range(3):
        assert run_consumer(messages_for("code-x", 10)) == []
    left = iter([60.0, 60.0, 1.0])
    done = scan_service.fold(Job("USER#u", today(), counter()), int(time.time()), lambda: next(left, 1.0),
                             eager=True)
    assert (done.steps, done.caught_up, total("code-x")) == (2, False, 20)
    fold_all()
    assert total("code-x") == 30


def test_an_ended_day_closes_once_nothing_is_left_and_a_late_scan_reopens_it(clean: None) -> None:
    now = int(time.time())
    yesterday = now - DAY
    day = day_bucket(yesterday)
    assert run_consumer(messages_for("code-y", 3, now=yesterday)) == []
    [mark] = panes.open_marks()
    assert run_consumer(messages_for("code-y", 2, now=yesterday)) == []  # a late scan: moves the mark
    assert panes.close(mark) is False
    later = panes.day_end(day) + panes.CLOSE_AFTER
    fold_all(max(now, later))
    assert items("OPEN#") == []  # closed after folding every pane
    assert total("code-y", day) == 5
    msgs = messages_for("code-y", 1, now=yesterday)  # a redelivery days later reopens it...
    assert run_consumer(msgs + msgs) == []
    assert len(items("OPEN#")) == 1
    fold_all(max(now, later))
    assert total("code-y", day) == 6 and items("OPEN#") == []  # ... and is counted once, from the checkpoint


def test_the_fanout_queues_one_job_per_open_day_up_to_a_settled_fence(queue: str) -> None:
    now = int(time.time())
    assert run_consumer(messages_for("c1", 2) + messages_for("c2", 1, scope="USER#v")) == []
    sqs = boto3.client("sqs")
    url = panes.settings().compaction_queue_url
    assert fanout.handler({}, FakeContext("fanout", "f1")) == {"jobs": 0}  # no fence is settled yet
    seq = counter()
    panes._fences.update(at=-1e9)
    history = panes.record_fence(now - scan_service.FOLD_AFTER - 1)  # as if the panes waited long enough
    assert history[-1].seq == seq
    assert fanout.handler({}, FakeContext("fanout", "f2")) == {"jobs": 2}
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(msgs) == 1  # up to 50 days a message
    jobs = sorted((j.scope, j.fence) for j in codec.parse_jobs(msgs[0]["Body"]) or [])
    assert jobs == [("USER#u", seq), ("USER#v", seq)]
    out = compaction.handler({"Records": [
        {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
         "messageAttributes": {}, "eventSource": "aws:sqs"} for m in msgs]}, FakeContext("compaction", "c1"))
    assert out == {"batchItemFailures": []}
    assert total("c1") == 2 and total("c2") == 1


def test_a_quiet_day_is_folded_once_its_oldest_pane_waited_a_busy_one_at_once(
        clean: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A day's items are written when its oldest unfolded pane has waited FOLD_AFTER (a fold every few
    minutes, not every minute: their cost), or at once when EAGER_PANES wait."""
    now = int(time.time())
    panes.record_fence(now - 400)
    assert run_consumer(messages_for("q", 3)) == []
    job = Job("USER#u", today(), counter())
    panes._fences.update(at=-1e9)
    panes.record_fence(now - 60)  # the pane is below a fence a minute old: not yet
    assert scan_service.fold(job, now).steps == 0 and total("q") == 0
    panes._fences.update(at=-1e9)
    panes.record_fence(now - scan_service.FOLD_AFTER)  # ... and one FOLD_AFTER old: due
    assert scan_service.fold(job, now).steps == 1 and total("q") == 3
    monkeypatch.setattr(scan_service, "EAGER_PANES", 3)
    for _ in range(3):
        assert run_consumer(messages_for("q", 1)) == []
    assert scan_service.fold(Job("USER#u", today(), counter()), now).steps == 1 and total("q") == 6


def test_the_takeover_of_panes_from_the_design_before_sequence_numbers_counts_each_scan_once(
        clean: None) -> None:
    """That design's compaction SET each item to the fold of the panes it had read (``n``) and the
    month's ``u_{dd}``: the first fold adds what it had not read yet, once."""
    day, scope = today(), "USER#old"
    client = boto3.client("dynamodb")
    rows = [f"{uuid.uuid4().hex} 0 US mobile default - 0" for _ in range(7)]
    for i, chunk in enumerate((rows[:4], rows[4:])):
        client.put_item(TableName=tables.table(), Item={
            "pk": {"S": k.pk_pane(scope, day)}, "sk": {"S": f"{i}{uuid.uuid4().hex[1:]}"}, "p": {"S": "business"},
            "c": {"S": "code-o SHORTCD 3"}, "s": {"S": "\n".join(chunk)}})
    for pk, sk in ((k.pk_code_agg("code-o"), k.sk_day(day)), (k.pk_scope_agg(scope), k.sk_day(day))):
        client.put_item(TableName=tables.table(), Item={  # what the old compaction set from the first pane
            "pk": {"S": pk}, "sk": {"S": sk}, "total": {"N": "4"}, "c_US": {"N": "4"}, "d_mobile": {"N": "4"},
            "t_default": {"N": "4"}, "n": {"N": "4"}})
    client.put_item(TableName=tables.table(), Item={
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_month(day[:7])}, f"u_{day[8:]}": {"N": "4"}})
    client.put_item(TableName=tables.table(), Item={
        "pk": {"S": codec.mark_pk(scope)}, "sk": {"S": codec.mark_sk(scope, day)}, "v": {"S": "x"}})
    assert run_consumer(messages_for("code-o", 2, scope=scope)) == []  # a new pane since
    fold_all()
    fold_all()
    assert total("code-o") == 9
    assert get(k.pk_scope_agg(scope), k.sk_day(day))["total"] == 9
    assert caps.month_usage(scope, day[:7]).used == 9


def test_the_compaction_function_reports_how_far_behind_it_is(
        clean: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    assert run_consumer(messages_for("c1", 2)) == []
    panes.record_fence(int(time.time()) - scan_service.FOLD_AFTER)  # the pane waited long enough
    body = codec.jobs([Job("USER#u", today(), counter(), int(time.time()) - 75)])
    out = compaction.handler({"Records": [{"messageId": "m1", "receiptHandle": "h", "body": body, "attributes": {},
                                           "messageAttributes": {}, "eventSource": "aws:sqs"}]},
                             FakeContext("compaction", "c1"))
    assert out == {"batchItemFailures": []}
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    lag = metrics[-1][compaction.LAG]
    assert max(lag if isinstance(lag, list) else [lag]) >= 75
    assert total("c1") == 2


# -- readers and the API: the same answers before and after folding -----------------------------------------

def workload(scope: str, made: list[dict[str, Any]], plan_name: str, now: int) -> list[dict[str, Any]]:
    """A fixed mix: three codes, two days, countries, devices and routing targets."""
    out = []
    for i in range(120):
        code = made[i % 3 if i % 5 else 0]
        at = now - DAY if i % 4 == 0 else now
        body = edge.scan_message(code["id"], scope, plan_name, at, ["US", "DE", "FR", "BR"][i % 4 if i % 7 else 0],
                                 ["mobile", "desktop", "tablet", "unknown"][i % 3],
                                 ["default", "rule:0", "split:1"][i % 3], codes=3)
        out.append({"MessageId": str(uuid.uuid4()), "Body": body})
    return out


def views(api: Any, token: str, made: list[dict[str, Any]]) -> dict[str, Any]:
    """What the API answers about an account's scans, code ids replaced by their index."""
    index = {c["id"]: i for i, c in enumerate(made)}
    paths = {"scope": "/api/analytics?range=7d",
             "scope, hourly": f"/api/analytics?range={HOURLY_RANGE}&granularity=hour",
             "codes": "/api/codes", "usage": "/api/user/usage",
             **{f"code {i}": f"/api/codes/{c['id']}/analytics" for i, c in enumerate(made)},
             **{f"code {i}, hourly": f"/api/codes/{c['id']}/analytics?range=7d&granularity=hour"
                for i, c in enumerate(made)}}
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


def test_the_api_answers_the_same_before_during_and_after_folding(
        clean: None, api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    acct = make_account("agency")
    made = [codes.create(acct.caller(), {"url": f"https://example.com/{i}"}, now) for i in range(3)]
    scope = acct.caller().scope
    msgs = workload(scope, made, "agency", now)
    assert run_consumer(msgs + msgs[:17], batch=9) == []
    assert items("AGG#" + made[0]["id"]) == []
    before = views(api, acct.token, made)  # nothing folded: every scan read from the panes
    assert before["scope"]["total"] == 120
    # a step under way: announced, half of its items written
    monkeypatch.setattr(counting, "WRITERS", 1)
    real = counting.add_once
    calls = []

    def half(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) > 5:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "crash"}}, "UpdateItem")
        return real(*args, **kw)

    monkeypatch.setattr(counting, "add_once", half)
    with pytest.raises(ClientError):
        fold_all()
    assert views(api, acct.token, made) == before  # items of the step under way are not counted twice
    monkeypatch.setattr(counting, "add_once", real)
    fold_all()
    assert views(api, acct.token, made) == before  # folded, the days still open
    fold_all(max(now, panes.day_end(day_bucket(now - DAY)) + panes.CLOSE_AFTER))
    assert [m.day for m in panes.open_marks()] == [day_bucket(now)]  # yesterday closed
    assert views(api, acct.token, made) == before


# -- the cap and the limit ------------------------------------------------------------------------------------

def test_the_cap_flag_and_its_event_are_written_with_the_months_count(queue: str, make_account: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    scope = make_account("solo").caller().scope
    now = int(time.time())
    month = month_bucket(now)
    cap = plan("solo").scans_per_month
    boto3.client("dynamodb").put_item(TableName=tables.table(), Item={  # counted by the design before panes
        "pk": {"S": k.pk_scope_agg(scope)}, "sk": {"S": k.sk_month(month)}, "used": {"N": str(cap - 3)}})
    assert run_consumer(messages_for("c1", 4, scope=scope, plan_name="solo")) == []
    assert caps.scans_used(scope, month) == cap + 1  # usage reads what no step folded yet
    writes: list[str] = []
    real = tables.ddb()

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **kw: Any) -> Any:
            writes.append(",".join(sorted(str(i[next(iter(i))].get("Key", i[next(iter(i))].get("Item", {}))
                                              ["pk"]["S"]).split("#")[0] for i in kw["TransactItems"])))
            return real.transact_write_items(**kw)

    monkeypatch.setattr(tables, "ddb", lambda: Spy())  # the module of the transactions
    fold_all()
    assert writes == ["EVENT,SAGG"]  # the month's count, its flag and the event: one transaction
    month_item = get(k.pk_scope_agg(scope), k.sk_month(month))
    assert month_item["cap_notified"] is True and caps.month_usage(scope, month).used == cap + 1


def test_max_scans_is_exact_at_the_redirect_under_a_burst(queue: str, api: Any, make_account: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # 100 redirects in one process against one DynamoDB Local on a shared machine: claims may wait
    # seconds (a claim left unanswered would spend its place: edge.claim_place)
    monkeypatch.setattr(edge, "CLAIM_READ_TIMEOUT", 30.0)
    acct = make_account("business")
    code = api.request("POST", "/api/codes", acct.token, json={
        "url": "https://example.com/offer",
        "routing": {"max_scans": 10, "fallback_url": "https://example.com/sold-out"}}).json()
    assert scan(code["shortcode"], method="HEAD")["statusCode"] == 302  # warms the lookups, takes no place
    answers: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(100)

    def visit() -> None:
        start.wait()
        r = scan(code["shortcode"])
        while r["statusCode"] == 503:  # a visitor whose browser was told to try again (a slow counter)
            r = scan(code["shortcode"])
        with lock:
            answers.append(r["headers"]["Location"])

    threads = [threading.Thread(target=visit) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count("https://example.com/offer") == 10
    assert answers.count("https://example.com/sold-out") == 90
    assert run_consumer(everything_sent(queue)) == []  # every scan counted once, wherever this load left it
    fold_all()
    day = get(k.pk_code_agg(code["id"]), k.sk_day(today()))
    assert (day["total"], day["t_default"], day["t_fallback"]) == (100, 10, 90)
    assert get(k.pk_limit(code["id"]), edge.LIMIT_SK)["n"] == 10


def test_a_limit_set_on_a_scanned_code_counts_its_earlier_scans(queue: str, api: Any, make_account: Any) -> None:
    acct = make_account("business")
    code = api.request("POST", "/api/codes", acct.token, json={"url": "https://example.com/p"}).json()
    for _ in range(4):
        assert scan(code["shortcode"])["statusCode"] == 302
    assert run_consumer(everything_sent(queue)) == []  # counted, not folded yet: the lifetime reads the panes
    r = api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"routing": {"max_scans": 5}})
    assert r.status == 200, r.body
    assert get(k.pk_limit(code["id"]), edge.LIMIT_SK)["n"] == 4
    from lambdas.redirect import handler as redirect

    redirect._cache.clear()
    assert scan(code["shortcode"])["statusCode"] == 302
    assert scan(code["shortcode"])["statusCode"] == 410  # ended: no fallback_url
    api.request("PATCH", f"/api/codes/{code['id']}", acct.token, json={"routing": None})
    assert get(k.pk_limit(code["id"]), edge.LIMIT_SK) == {}
    redirect._cache.clear()
    assert scan(code["shortcode"])["statusCode"] == 302


def test_a_limit_counter_that_does_not_answer_is_a_503_never_a_place(
        queue: str, api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account("business")
    code = api.request("POST", "/api/codes", acct.token, json={
        "url": "https://example.com/l", "routing": {"max_scans": 3}}).json()
    scan(code["shortcode"])  # warm the cache

    def down(*args: Any, **kw: Any) -> bool:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "hot"}},
                          "UpdateItem")

    monkeypatch.setattr(edge, "claim_place", down)
    r = scan(code["shortcode"])
    assert r["statusCode"] == 503 and r["headers"]["Retry-After"] == "1"
    assert len(everything_sent(queue)) == 1  # only the first scan was counted
