"""The redirect's hot path and the scan aggregator's write amplification.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_redirect.py
    .venv/bin/python benchmarks/bench_redirect.py --scans 2000   # quicker

Prints, on this machine:

1. AWS calls per scan through the redirect handler, in-process against
   DynamoDB Local and moto's SQS: on a cache miss and on a cache hit.
2. The handler's own time per scan with every AWS call stubbed (p50/p90/p99).
3. (The redirect's cold import next to ``import boto3``: benchmarks/bench_coldstart.py.)
4. What reaches DynamoDB when the aggregator counts N scans spread over 100
   codes versus N scans on one code (team plan: hourly aggregates too), at
   the local batch size (10) and the recommended AWS batch size (100):
   write requests (items written) per scan, transactions, reads. (DynamoDB
   Local's ConsumedCapacity is not AWS's: the WCU model is in docs/analytics.md.)
5. ``max_scans`` overshoot (docs/analytics.md, "Routing"): the scans that still
   reach a code's regular destinations after its max_scans-th scan, at 10, 100
   and 1,000 scans/s, from a model over the redirect's cache window, the event
   source mapping's batching (template: batch 100, window 2 s) and the
   aggregator's measured time per batch of 100.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                   "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true",
                   "POWERTOOLS_METRICS_DISABLED": "true", "SHORT_BASE_URL": "https://aqr.net"})

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"


def event(shortcode: str, ua: str = IPHONE, country: str = "US") -> dict[str, Any]:
    return {"version": "2.0", "rawPath": f"/{shortcode}", "requestContext": {"http": {"method": "GET"}},
            "headers": {"user-agent": ua, "cloudfront-viewer-country": country, "x-forwarded-for": "203.0.113.9",
                        "accept": "text/html", "accept-language": "en-US"}}


class Counting:
    """Counts the calls made through a boto3 client (and their consumed capacity)."""

    def __init__(self, real: Any, capacity: bool = False) -> None:
        self.real, self.capacity = real, capacity
        self.calls: dict[str, int] = {}
        self.items_written = 0
        self.written_keys: list[dict[str, Any]] = []  # of each TransactWriteItems that went through
        self.puts: list[dict[str, Any]] = []  # each PutItem's item, and each UpdateItem's key, that went through
        self.updated_keys: list[dict[str, Any]] = []
        self.wcu = 0.0
        self.rcu = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name == "transact_write_items":
                self.items_written += len(kw["TransactItems"])
            if self.capacity and name in ("transact_write_items", "get_item", "update_item", "query"):
                kw["ReturnConsumedCapacity"] = "TOTAL"
            out = attr(*args, **kw)
            if name == "put_item":
                self.puts.append(kw["Item"])
            elif name == "update_item":
                self.updated_keys.append(kw["Key"])
            elif name == "transact_write_items":  # a cancelled transaction raised above: nothing of it was written
                self.written_keys += [body.get("Key") or {"pk": body["Item"]["pk"], "sk": body["Item"]["sk"]}
                                      for entry in kw["TransactItems"] for body in entry.values()]
            for used in (out.get("ConsumedCapacity") or []) if isinstance(out.get("ConsumedCapacity"), list) \
                    else [out.get("ConsumedCapacity") or {}]:
                self.wcu += float(used.get("WriteCapacityUnits", 0) or 0)
                self.rcu += float(used.get("ReadCapacityUnits", 0) or 0)
                if name == "transact_write_items" and not used.get("WriteCapacityUnits"):
                    self.wcu += float(used.get("CapacityUnits", 0) or 0)
                if name != "transact_write_items" and not used.get("ReadCapacityUnits"):
                    self.rcu += float(used.get("CapacityUnits", 0) or 0)
            return out

        return call


# -- 2. the handler alone ----------------------------------------------------------------------------

ROUTING = {"rules": [{"if": {"country": ["DE", "AT", "CH"]}, "url": "https://example.de/"},
                     {"if": {"os": ["android"]}, "url": "https://play.google.com/store/apps/details?id=x"}],
           "split": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/b", "weight": 50}],
           "max_scans": 1_000_000, "fallback_url": "https://example.com/ended",
           "utm": {"source": "qr", "medium": "print", "campaign": "spring"}}


class Stub:
    """Canned answers for the redirect's three calls (a routed code: rules missed, a split, utm)."""

    def __init__(self, routed: bool = False) -> None:
        self.short = {"Item": {"code_id": {"S": "c" * 36}, "scope": {"S": "USER#u"},
                               "url": {"S": "https://example.com/landing"}, "status": {"S": "active"}}}
        if routed:
            self.short["Item"]["routing"] = {"S": json.dumps(ROUTING, separators=(",", ":"))}
            self.short["Item"]["scans_total"] = {"N": "12345"}
        self.profile = {"Item": {"plan": {"S": "business"}, "plan_status": {"S": "active"},
                                 "plan_status_at": {"N": "1"}}}

    def get_item(self, **kw: Any) -> dict[str, Any]:
        return self.short if kw["Key"]["pk"]["S"].startswith("SHORT#") else self.profile

    def send_message(self, **kw: Any) -> dict[str, Any]:
        return {"MessageId": "m"}


def handler_time(n: int, routed: bool = False) -> dict[str, float]:
    from lambdas.redirect import handler as redirect
    from qrpro.data import edge

    stub = Stub(routed)
    real_fast = edge.fast
    edge.fast = lambda service: stub  # type: ignore[assignment]
    try:
        redirect._cache.clear()
        ev = event("aBc123x")
        for _ in range(200):
            redirect.handler(ev, None)
        laps = []
        for _ in range(n):
            t = time.perf_counter_ns()
            redirect.handler(ev, None)
            laps.append(time.perf_counter_ns() - t)
    finally:
        edge.fast = real_fast  # type: ignore[assignment]
    laps.sort()
    return {"p50": laps[len(laps) // 2] / 1e6, "p90": laps[int(len(laps) * 0.9)] / 1e6,
            "p99": laps[int(len(laps) * 0.99)] / 1e6}


# -- 1 and 4: against DynamoDB Local and moto ----------------------------------------------------------

def with_engines(work: Any) -> Any:
    import boto3
    from moto.server import ThreadedMotoServer

    from qrpro_cli.engines import _wait_for, free_port, start_dynamodb_local

    port, moto_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_dynamodb_local(None, port, Path(tmp) / "ddb.log")
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        try:
            endpoint, moto_endpoint = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}"
            os.environ.update({"AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_ENDPOINT_URL_SQS": moto_endpoint,
                               "AWS_ENDPOINT_URL_SES": moto_endpoint, "TABLE_NAME": "bench",
                               "IDEMPOTENCY_TABLE_NAME": "bench-idem"})
            client = boto3.client("dynamodb")
            _wait_for(client.list_tables, "DynamoDB Local", proc)
            from qrpro.data.schema import create_tables

            create_tables(client, "bench", "bench-idem")
            url = boto3.client("sqs").create_queue(QueueName="scans")["QueueUrl"]
            os.environ["SCANS_QUEUE_URL"] = url
            boto3.client("ses").verify_email_identity(EmailAddress="no-reply@aqr.net")
            return work()
        finally:
            moto.stop()
            proc.terminate()
            proc.wait(timeout=20)


def hot_path_calls(n: int) -> dict[str, float]:
    from lambdas.redirect import handler as redirect
    from qrpro.config import settings
    from qrpro.data import accounts, edge
    from qrpro.services import codes
    from qrpro.services import keys as key_service

    settings.cache_clear()
    now = int(time.time())
    user_id = accounts.create_account(f"{uuid.uuid4().hex[:8]}@example.com", "business", now)
    key_id, _ = key_service.create(user_id, "bench", now)
    caller = accounts.resolve_caller(user_id, key_id)
    code = codes.create(caller, {"url": "https://example.com/landing"}, now)
    clients: dict[str, Counting] = {}

    def counting(service: str) -> Counting:
        if service not in clients:
            clients[service] = Counting(edge._fast_client(service, os.environ.get(
                f"AWS_ENDPOINT_URL_{service.upper()}")))
        return clients[service]

    real_fast = edge.fast
    edge.fast = counting  # type: ignore[assignment]
    try:
        redirect._cache.clear()
        redirect.handler(event(code["shortcode"]), None)
        miss = sum(sum(c.calls.values()) for c in clients.values())
        for c in clients.values():
            c.calls.clear()
        laps = []
        for _ in range(n):
            t = time.perf_counter_ns()
            assert redirect.handler(event(code["shortcode"]), None)["statusCode"] == 302
            laps.append(time.perf_counter_ns() - t)
        hit_calls = sum(sum(c.calls.values()) for c in clients.values())
        detail = {f"{svc}.{name}": count / n for svc, c in clients.items() for name, count in c.calls.items()}
    finally:
        edge.fast = real_fast  # type: ignore[assignment]
    laps.sort()
    return {"miss": miss, "hit": hit_calls / n, **detail, "p50 ms (real local calls)": laps[n // 2] / 1e6}


def writes_per_scan(n: int, codes_n: int, batch: int) -> dict[str, float]:
    from lambdas.scans import handler as consumer
    from qrpro.data import caps, counting, edge
    from qrpro.data import keys as k
    from qrpro.data.table import from_item, key, table
    from qrpro.domain.clock import day_bucket
    from qrpro.domain.codes import new_shortcode
    from qrpro_cli.runtime import FakeContext

    scope = f"TEAM#{uuid.uuid4()}"
    now = int(time.time())
    ids = [str(uuid.uuid4()) for _ in range(codes_n)]
    shortcodes = [new_shortcode() for _ in range(codes_n)]
    for cid, sc in zip(ids, shortcodes, strict=True):  # each scan also adds to its code's scans_total
        counting.ddb().put_item(TableName=table(), Item={"pk": {"S": k.pk_short(sc)}, "sk": {"S": "SHORT"},
                                                          "code_id": {"S": cid}})
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "CA", "NL"]
    devices = ["mobile", "mobile", "mobile", "desktop", "tablet", "unknown"]
    bodies = [edge.scan_message(ids[i % codes_n], scope, "team", now, countries[i % 8], devices[i % 6],
                                shortcodes[i % codes_n], f"split:{i % 2}") for i in range(n)]
    from qrpro.data import table as tables

    spy = Counting(counting.ddb())
    real = counting.ddb
    # the transaction (qrpro.data.table), the parked-scan reads and the cap check's reads
    counting.ddb = caps.ddb = tables.ddb = lambda: spy  # type: ignore[assignment]
    consumer._last_drain = time.monotonic()
    t = time.perf_counter()
    try:
        for i in range(0, n, batch):
            out = consumer.handler({"Records": [{"messageId": str(j), "body": b}
                                                for j, b in enumerate(bodies[i:i + batch])]},
                                  FakeContext("scans", str(i)))
            assert out == {"batchItemFailures": []}, out
    finally:
        counting.ddb = caps.ddb = tables.ddb = real  # type: ignore[assignment]
    elapsed = time.perf_counter() - t

    day = from_item(counting.ddb().get_item(TableName=table(), Key=key(k.pk_scope_agg(scope),
                                                                      k.sk_day(day_bucket(now))))["Item"])
    assert day is not None and day["total"] == n, day
    tx = spy.calls.get("transact_write_items", 0)
    return {"items written / scan": spy.items_written / n, "of which markers / scan": 1.0,
            "counter updates / scan": (spy.items_written - n) / n, "transactions / scan": tx / n,
            "reads / scan": spy.calls.get("get_item", 0) / n, "scans/s (local)": n / elapsed,
            "s / batch": elapsed / -(-n // batch)}


# -- 5: max_scans overshoot -------------------------------------------------------------------------

BATCH_SIZE, BATCH_WINDOW = 100, 2.0  # infra/constructs/jobs.py: the scans event source mapping
POLL_SECONDS = 0.2  # SQS to a waiting poller (long polling answers as soon as a message lands); an assumption


def overshoot(rate: float, batch_seconds: float, cache_seconds: float) -> dict[str, float]:
    """Scans past ``max_scans`` at ``rate`` scans/s on one code. The max_scans-th scan is counted
    ``lag`` seconds after it was made (queue, the batch filling up or its window closing, the
    transaction); a warm redirect container then still serves its cached ``scans_total`` for up to
    ``cache_seconds`` (``cache_seconds / 2`` on average over containers)."""
    fill = min(BATCH_WINDOW, BATCH_SIZE / rate)  # a batch closes when full or when its window ends
    lag = POLL_SECONDS + fill + batch_seconds
    return {"lag s": lag, "typical": rate * (POLL_SECONDS + fill / 2 + batch_seconds + cache_seconds / 2),
            "worst": rate * (lag + cache_seconds)}


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=10_000)
    args = parser.parse_args()
    out: dict[str, Any] = {}

    own = handler_time(20_000)
    routed = handler_time(20_000, routed=True)
    print("== redirect handler alone (AWS calls stubbed), 20,000 scans on a cached code")
    print(f"   plain  p50 {own['p50'] * 1000:.0f} µs   p90 {own['p90'] * 1000:.0f} µs   p99 {own['p99'] * 1000:.0f} µs")
    print(f"   routed p50 {routed['p50'] * 1000:.0f} µs   p90 {routed['p90'] * 1000:.0f} µs   "
          f"p99 {routed['p99'] * 1000:.0f} µs (2 rules missed, a split, utm, max_scans)")
    out["handler"], out["handler routed"] = own, routed

    def engine_work() -> dict[str, Any]:
        res: dict[str, Any] = {"hot": hot_path_calls(min(args.scans, 2000))}
        for codes_n in (100, 1):
            for batch in (10, 100):
                res[f"{codes_n} codes, batch {batch}"] = writes_per_scan(args.scans, codes_n, batch)
        return res

    res = with_engines(engine_work)
    hot = res.pop("hot")
    print("== AWS calls per scan through the redirect handler (DynamoDB Local + moto SQS)")
    print(f"   cache miss: {hot.pop('miss'):.0f} calls (GetItem SHORT#, GetItem PROFILE, SQS SendMessage)")
    print(f"   cache hit:  {hot.pop('hit'):.2f} calls per scan: " +
          ", ".join(f"{name} {v:.2f}" for name, v in hot.items() if "." in name))
    print(f"   p50 per scan with the real local SQS call: {hot['p50 ms (real local calls)']:.2f} ms")
    out["hot_path"] = hot
    print(f"== the aggregator: {args.scans:,} scans, team plan (hourly aggregates too)")
    cols = ["items written / scan", "counter updates / scan", "transactions / scan", "reads / scan",
            "scans/s (local)"]
    print("   case                   " + " | ".join(f"{c:>22}" for c in cols))
    for case, figures in res.items():
        print(f"   {case:22} " + " | ".join(f"{figures[c]:22.3f}" for c in cols))
    out["aggregator"] = res
    from lambdas.redirect.handler import CACHE_SECONDS

    per_batch = res["1 codes, batch 100"]["s / batch"]
    print(f"== max_scans overshoot (model: batch {BATCH_SIZE}, window {BATCH_WINDOW:.0f} s, cache "
          f"{CACHE_SECONDS:.0f} s, {per_batch * 1000:.0f} ms per batch of 100 as measured above)")
    print("   scans/s   count lag s   overshoot typical   worst")
    out["overshoot"] = {}
    for rate in (10, 100, 1000):
        o = overshoot(rate, per_batch, CACHE_SECONDS)
        out["overshoot"][rate] = o
        print(f"   {rate:7,}   {o['lag s']:11.2f}   {o['typical']:17,.0f}   {o['worst']:5,.0f}")
    print("== json")
    print(json.dumps(out, indent=None, default=str))


if __name__ == "__main__":
    main()
