"""The redirect's hot path and the scan aggregator's write amplification.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_redirect.py
    .venv/bin/python benchmarks/bench_redirect.py --scans 2000   # quicker

Prints, on this machine:

1. AWS calls per scan through the redirect handler, in-process against
   DynamoDB Local and moto's SQS: on a cache miss and on a cache hit.
2. The handler's own time per scan with every AWS call stubbed (p50/p90/p99).
3. (The redirect's cold import next to ``import boto3``: benchmarks/bench_coldstart.py.)
4. What reaches DynamoDB when the aggregator writes N scans spread over 100
   codes versus N scans on one code, at batch sizes 10 and 100: write requests
   per scan (panes, the sequence counter, open marks), reads, scans/s. (What
   folding them costs: benchmarks/bench_compaction.py and bench_scan_cost.py.)
5. A code with a scan limit (routing ``max_scans``): its AWS calls per scan on a
   cache hit (the enqueue and the limit's conditional update: exact, no
   overshoot), and the same for a scan on the limit's last place.
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

    def update_item(self, **kw: Any) -> dict[str, Any]:  # the scan limit's claim (a place left)
        return {}


def handler_time(n: int, routed: bool = False) -> dict[str, float]:
    from lambdas.redirect import handler as redirect
    from qrpro.data import edge

    stub = Stub(routed)
    real_fast = edge.fast
    edge.fast = lambda service, read_timeout=None: stub  # type: ignore[assignment]
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


def hot_path_calls(n: int, routing: dict[str, Any] | None = None) -> dict[str, float]:
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
    code = codes.create(caller, {"url": "https://example.com/landing", "routing": routing}, now)
    clients: dict[tuple[str, float | None], Counting] = {}

    def counting(service: str, read_timeout: float | None = None) -> Counting:
        if (service, read_timeout) not in clients:
            clients[(service, read_timeout)] = Counting(edge._fast_client(service, os.environ.get(
                f"AWS_ENDPOINT_URL_{service.upper()}"), read_timeout))
        return clients[(service, read_timeout)]

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
        detail = {f"{svc}.{name}": count / n for (svc, _), c in clients.items() for name, count in c.calls.items()}
    finally:
        edge.fast = real_fast  # type: ignore[assignment]
    laps.sort()
    return {"miss": miss, "hit": hit_calls / n, **detail, "p50 ms (real local calls)": laps[n // 2] / 1e6}


def writes_per_scan(n: int, codes_n: int, batch: int) -> dict[str, float]:
    from lambdas.scans import handler as consumer
    from qrpro.data import edge, panes
    from qrpro.data import table as tables
    from qrpro_cli.runtime import FakeContext

    scope = f"TEAM#{uuid.uuid4()}"
    now = int(time.time())
    ids = [str(uuid.uuid4()) for _ in range(codes_n)]
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "CA", "NL"]
    devices = ["mobile", "mobile", "mobile", "desktop", "tablet", "unknown"]
    bodies = [edge.scan_message(ids[i % codes_n], scope, "team", now, countries[i % 8], devices[i % 6],
                                f"split:{i % 2}") for i in range(n)]
    spy = Counting(panes.ddb())
    real = panes.ddb
    panes.ddb = tables.ddb = lambda: spy  # type: ignore[assignment]
    consumer._last_drain = time.monotonic()
    t = time.perf_counter()
    try:
        for i in range(0, n, batch):
            out = consumer.handler({"Records": [{"messageId": str(j), "body": b}
                                                for j, b in enumerate(bodies[i:i + batch])]},
                                  FakeContext("scans", str(i)))
            assert out == {"batchItemFailures": []}, out
    finally:
        panes.ddb = tables.ddb = real  # type: ignore[assignment]
    elapsed = time.perf_counter() - t
    writes = spy.calls.get("put_item", 0) + spy.calls.get("update_item", 0)
    return {"writes / scan": writes / n, "pane puts / scan": spy.calls.get("put_item", 0) / n,
            "counter and mark updates / scan": spy.calls.get("update_item", 0) / n,
            "transactions / scan": spy.calls.get("transact_write_items", 0) / n,
            "reads / scan": (spy.calls.get("get_item", 0) + spy.calls.get("query", 0)) / n,
            "scans/s (local)": n / elapsed, "s / batch": elapsed / -(-n // batch)}


LIMITED = {"max_scans": 1_000_000_000, "fallback_url": "https://example.com/ended"}


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
        res: dict[str, Any] = {"hot": hot_path_calls(min(args.scans, 2000)),
                               "limited": hot_path_calls(min(args.scans, 2000), LIMITED)}
        for codes_n in (100, 1):
            for batch in (10, 100):
                res[f"{codes_n} codes, batch {batch}"] = writes_per_scan(args.scans, codes_n, batch)
        return res

    res = with_engines(engine_work)
    hot = res.pop("hot")
    limited = res.pop("limited")
    print("== AWS calls per scan through the redirect handler (DynamoDB Local + moto SQS)")
    print(f"   cache miss: {hot.pop('miss'):.0f} calls (GetItem SHORT#, GetItem PROFILE, SQS SendMessage)")
    print(f"   cache hit:  {hot.pop('hit'):.2f} calls per scan: " +
          ", ".join(f"{name} {v:.2f}" for name, v in hot.items() if "." in name))
    print(f"   p50 per scan with the real local SQS call: {hot['p50 ms (real local calls)']:.2f} ms")
    out["hot_path"] = hot
    print(f"== the aggregator: {args.scans:,} scans, team plan (panes: folding them is bench_compaction's)")
    cols = ["writes / scan", "pane puts / scan", "counter and mark updates / scan", "reads / scan",
            "scans/s (local)"]
    print("   case                   " + " | ".join(f"{c:>31}" for c in cols))
    for case, figures in res.items():
        print(f"   {case:22} " + " | ".join(f"{figures[c]:31.3f}" for c in cols))
    out["aggregator"] = res
    limited.pop("miss")
    print("== a code with a scan limit (max_scans): exact at the redirect, one conditional update per counted scan")
    print(f"   cache hit:  {limited.pop('hit'):.2f} calls per scan: " +
          ", ".join(f"{name} {v:.2f}" for name, v in limited.items() if "." in name))
    print(f"   p50 per scan with the real local calls: {limited['p50 ms (real local calls)']:.2f} ms")
    out["limited"] = limited
    print("== json")
    print(json.dumps(out, indent=None, default=str))


if __name__ == "__main__":
    main()
