"""What a scan costs, in dollars per million scans, from measured request counts.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_scan_cost.py
    .venv/bin/python benchmarks/bench_scan_cost.py --scans 300   # quicker, noisier

For 1 hot code, 100 codes (one account) and 10,000 codes (100 accounts of
100), at 1, 10 and 100 million scans a month spread evenly over the month:

1. the deployed configuration is read from the synthesized template (the
   redirect's memory and tracing, the aggregator's and the compaction's
   memory, the scans mapping's batch size and window, the schedules);
2. each month's traffic becomes SQS batches as the mapping forms them (a
   Poisson number of scans per batching window, at least 1, at most the batch
   size), scans spread uniformly over the codes;
3. those batches run through the real aggregator (``lambdas.scans.handler``)
   against DynamoDB Local, and the real compaction (``scans.fold``) folds each
   account's day as often as it would: every ``FOLD_AFTER`` + a fan-out period
   of scans, or every minute when ``EAGER_PANES`` panes wait; the items and
   their sizes, reads and time are counted;
4. the counts times the list prices below give $ per million scans, line by
   line (``docs/performance.md``, "What a scan costs"), with the fan-out's and
   the idle fold checks' fixed cost (every open day, every minute) spread over
   the volume, and the redirect's X-Ray line: none as deployed (PassThrough),
   and what Lambda's default sampling (the first request each second, then 5 %)
   recorded before.

The last line is the result at 10 million scans a month, as one JSON object:
``{"usd_per_million_scans": {"1_code": x, "100_codes": y, "10000_codes": z}}``.

DynamoDB Local's ConsumedCapacity does not follow AWS's rules, so write units
are counted as AWS bills them: each item written, sized after the write, 1 unit
per KB, 2 in a transaction.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import bench_redirect as br  # sets sys.path and the local AWS environment

MONTH_S = 30 * 86_400
MILLION = 1_000_000

# us-east-1, on-demand list prices, after free tiers (as the team knew them on 30 November 2026;
# the build machine cannot reach the price list: check before relying on them).
PRICE = {
    "cloudfront_request": 1.00 / MILLION,  # HTTPS request
    "cloudfront_gb_out": 0.085,  # data transfer out to the internet, first 10 TB
    "lambda_request": 0.20 / MILLION,
    "lambda_gb_s": 0.0000133334,  # arm64
    "sqs_request": 0.40 / MILLION,  # standard queue, per 64 KB chunk
    "ddb_wru": 0.625 / MILLION,  # on-demand write request unit (1 KB; transactional: 2)
    "ddb_rru": 0.125 / MILLION,  # on-demand read request unit (4 KB strongly consistent)
    "logs_gb": 0.50,  # CloudWatch Logs ingestion (standard class)
    "xray_trace": 5.00 / MILLION,  # X-Ray traces recorded
}
PLATFORM_LOG_BYTES = 300  # Lambda's START/END/REPORT lines per invocation in text format (~80 + 50 + 170 bytes)
RESPONSE_BYTES = 600  # a 302 with Location, Cache-Control and CloudFront's own headers, on the wire
POLLERS, POLLS_PER_MIN = 5, 3  # Lambda's SQS pollers at rest: long polls of 20 s each
SQS_MAX_RECEIVE = 10  # messages per ReceiveMessage / DeleteMessageBatch
CODES_PER_ACCOUNT = 100
SCENARIOS = {"1_code": 1, "100_codes": 100, "10000_codes": 10_000}
VOLUMES = (1, 10, 100)  # million scans a month


@dataclass(frozen=True)
class Deployed:
    """What the template deploys, as the cost depends on it."""

    redirect_mb: int
    redirect_traced: bool
    scans_mb: int
    compaction_mb: int
    batch_size: int
    window_s: float
    drains_per_month: float
    redirect_platform_logs: bool

    @classmethod
    def from_template(cls) -> Deployed:
        from qrpro_cli.template import Template

        t = Template.load()
        scans = t.function_by_name("scans")
        mapping = next(m for m in t.mappings() if m.function == scans.logical_id)
        drain = next(s for s in t.schedules() if s.function == scans.logical_id)
        redirect = t.function_by_name("redirect")
        props = t.resources[redirect.logical_id]["Properties"]
        logging = props.get("LoggingConfig", {})
        return cls(redirect_mb=redirect.memory, scans_mb=scans.memory,
                   redirect_traced=props.get("TracingConfig", {}).get("Mode") == "Active",
                   compaction_mb=t.function_by_name("compaction").memory,
                   redirect_platform_logs=logging.get("SystemLogLevel", "INFO") != "WARN",
                   batch_size=int(mapping.props.get("BatchSize", 10)),
                   window_s=float(mapping.props.get("MaximumBatchingWindowInSeconds", 0)),
                   drains_per_month=MONTH_S / 60 / _rate_minutes(drain.expression))


def _rate_minutes(expression: str) -> float:
    """``rate(5 minutes)`` -> 5.0."""
    n, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return float(n) * {"minute": 1, "minutes": 1, "hour": 60, "hours": 60}[unit]


def _poisson(lam: float, rng: random.Random) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def batch_sizes(rate: float, d: Deployed, scans: int, rng: random.Random) -> list[int]:
    """Batches as the mapping forms them at ``rate`` scans/s: full when the window would
    overfill them, else a Poisson draw over the window (an empty window invokes nothing)."""
    lam = rate * d.window_s
    out: list[int] = []
    while sum(out) < scans:
        if lam >= d.batch_size:
            n = d.batch_size
        else:
            n = 0
            while n == 0:
                n = _poisson(lam, rng)
            n = min(n, d.batch_size)
        out.append(n)
    return out


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rule: attribute names plus values (strings as UTF-8, a number
    about one byte per two digits)."""
    size = 0
    for name, value in item.items():
        (kind, v), = value.items()
        size += len(name) + (len(v) // 2 + 1 if kind == "N" else len(str(v).encode()))
    return size


class Billed(br.Counting):
    """Counts calls, and the write units AWS bills for them (each written item's size after the
    write, in KB; twice inside a transaction) and the read units (by what came back)."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self.wru = 0.0
        self.rru = 0.0

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if not callable(call) or name not in ("put_item", "update_item", "transact_write_items", "get_item",
                                               "query", "batch_get_item", "delete_item"):
            return call

        def billed(*args: Any, **kw: Any) -> Any:
            out = call(*args, **kw)
            if name == "put_item":
                self.wru += math.ceil(item_bytes(kw["Item"]) / 1024)
            elif name in ("update_item", "delete_item"):
                self.wru += self._size(kw["Key"])
            elif name == "transact_write_items":
                for entry in kw["TransactItems"]:
                    body = next(iter(entry.values()))
                    self.wru += 2 * (self._size(body["Key"]) if "Key" in body
                                     else math.ceil(item_bytes(body["Item"]) / 1024))
            elif name == "get_item":
                self.rru += max(1, math.ceil(item_bytes(out.get("Item") or {}) / 4096))
            elif name == "query":
                self.rru += max(1, math.ceil(sum(item_bytes(i) for i in out.get("Items", [])) / 4096))
            elif name == "batch_get_item":
                got = [i for items in out.get("Responses", {}).values() for i in items]
                self.rru += max(1, len(got))
            return out

        return billed

    def _size(self, key: dict[str, Any]) -> int:
        from qrpro.data.table import table

        item = self.real.get_item(TableName=table(), Key=key, ConsistentRead=True).get("Item")
        return max(1, math.ceil(item_bytes(item or {}) / 1024))


def measure(codes_n: int, sizes: list[int], rng: random.Random, rate: float, d: Deployed) -> dict[str, float]:
    """The aggregator over these batches and the compaction at its cadence, against DynamoDB
    Local: per scan."""
    from lambdas.scans import handler as consumer
    from qrpro.data import counting, edge, panes
    from qrpro.data import table as tables
    from qrpro.data.table import table
    from qrpro.domain.scan_codec import Job
    from qrpro.services import scans as scan_service
    from qrpro_cli.runtime import FakeContext

    accounts = [f"TEAM#{uuid.uuid4()}" for _ in range(max(1, codes_n // CODES_PER_ACCOUNT))]
    codes = [(str(uuid.uuid4()), accounts[i % len(accounts)]) for i in range(codes_n)]
    scope_codes = min(codes_n, CODES_PER_ACCOUNT)
    now = int(time.time())
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "CA", "NL", "IN", "ES", "IT", "MX"]
    devices = ["mobile", "mobile", "mobile", "desktop", "tablet", "unknown"]
    # an account's panes a minute: one per batch that has its scans (batches close on the window or full)
    batches_per_minute = max(60 / d.window_s, rate * 60 / d.batch_size)
    eager = min(rate / len(accounts) * 60, batches_per_minute) >= scan_service.EAGER_PANES
    fold_every_s = 60 if eager else scan_service.FOLD_AFTER + 60
    fold_every = max(1, round(rate * fold_every_s))  # scans between two folds of every account's day
    raw = panes.ddb()
    spy = Billed(raw)
    saved = (panes.ddb, counting.ddb, tables.ddb)
    panes.ddb = counting.ddb = tables.ddb = lambda: spy  # type: ignore[assignment]
    counting.WRITERS = 1  # the spy counts exactly (it is not thread-safe)
    consumer._last_drain = time.monotonic()
    n = sum(sizes)
    aggregating = folding = 0.0
    folds = since = 0
    try:
        for i, size in enumerate(sizes):
            bodies = [edge.scan_message(cid, scope, "team", now, rng.choice(countries), rng.choice(devices),
                                        f"split:{rng.randrange(2)}", scope_codes)
                      for cid, scope in (codes[rng.randrange(codes_n)] for _ in range(size))]
            t = time.perf_counter()
            out = consumer.handler({"Records": [{"messageId": str(j), "body": b, "attributes": {
                "SentTimestamp": str(now * 1000)}} for j, b in enumerate(bodies)]}, FakeContext("scans", str(i)))
            aggregating += time.perf_counter() - t
            assert out == {"batchItemFailures": []}, out
            since += size
            if since >= fold_every or i == len(sizes) - 1:
                fence = int(raw.get_item(TableName=table(), Key={"pk": {"S": "SEQ"}, "sk": {"S": "SEQ"}},
                                         ConsistentRead=True)["Item"]["n"]["N"])
                t = time.perf_counter()
                for scope in accounts:
                    scan_service.fold(Job(scope, day, fence), now, eager=True)
                folding += time.perf_counter() - t
                folds += 1
                since = 0
    finally:
        panes.ddb, counting.ddb, tables.ddb = saved  # type: ignore[assignment]
        counting.WRITERS = 8
    return {"wru": spy.wru / n, "rru": spy.rru / n, "batches": len(sizes) / n,
            "ms_per_batch": aggregating * 1000 / len(sizes), "fold_s_per_scan": folding / n,
            "accounts": len(accounts), "folds_per_scan": folds * len(accounts) / n}


def cost(m: dict[str, float], codes_n: int, volume: float, d: Deployed, edge: dict[str, float],
         traced: bool) -> dict[str, float]:
    """$ per million scans, line by line, for ``volume`` scans a month."""
    from lambdas.compaction.handler import SIDE_BY_SIDE
    from qrpro.data.panes import JOBS_PER_MESSAGE

    rate = volume / MONTH_S
    accounts = m["accounts"]
    code_rate, account_rate = rate / codes_n, rate / accounts
    cache = edge["cache_s"]
    # a warm container re-reads SHORT# and the account's profile once per cache window in which it sees a scan
    redirect_reads = 1 / (1 + code_rate * cache) + 1 / (1 + account_rate * cache)
    redirect_s = math.ceil(edge["ms_per_scan"]) / 1000
    receives = math.ceil(1 / m["batches"] / SQS_MAX_RECEIVE) * m["batches"] * 2  # receive + delete batch
    fixed_sqs = POLLERS * POLLS_PER_MIN * MONTH_S / 60 / volume  # empty long polls, spread over the scans
    scans_s = math.ceil(m["ms_per_batch"]) / 1000 * m["batches"]
    # every minute: the fan-out (a read of the marks, the job messages), and each open day's job: a message
    # share, two small reads when nothing is due (the folds themselves are measured)
    minutes = MONTH_S / 60
    job_messages = minutes * math.ceil(accounts / JOBS_PER_MESSAGE)
    idle_rru = minutes * accounts * 2
    fold_lambda_s = m["fold_s_per_scan"] * volume / SIDE_BY_SIDE  # side by side in a worker
    # X-Ray's default sampling for a function: the first request each second, then 5 % of the rest
    traces = min(rate, 1) + 0.05 * max(0.0, rate - 1) if traced else 0.0
    lines = {
        "CloudFront": PRICE["cloudfront_request"] + RESPONSE_BYTES / 1e9 * PRICE["cloudfront_gb_out"],
        "redirect Lambda": PRICE["lambda_request"] + redirect_s * d.redirect_mb / 1024 * PRICE["lambda_gb_s"],
        "redirect logs": d.redirect_platform_logs * PLATFORM_LOG_BYTES / 1e9 * PRICE["logs_gb"],
        "redirect reads": redirect_reads * PRICE["ddb_rru"],
        "redirect X-Ray": traces / rate * PRICE["xray_trace"] if rate else 0.0,
        "SQS": (1 + receives + fixed_sqs) * PRICE["sqs_request"],
        "DynamoDB writes": m["wru"] * PRICE["ddb_wru"],
        "DynamoDB reads": (m["rru"] + idle_rru / volume) * PRICE["ddb_rru"],
        "aggregator Lambda": (m["batches"] + d.drains_per_month / volume) * PRICE["lambda_request"]
        + scans_s * d.scans_mb / 1024 * PRICE["lambda_gb_s"] + m["batches"] * PLATFORM_LOG_BYTES / 1e9
        * PRICE["logs_gb"],
        "fan-out and compaction": (minutes + job_messages) / volume * (PRICE["lambda_request"]
                                                                       + 3 * PRICE["sqs_request"])
        + (fold_lambda_s / volume + minutes * 0.2 / volume) * d.compaction_mb / 1024 * PRICE["lambda_gb_s"],
    }
    return {name: usd * MILLION for name, usd in lines.items()}


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=1000, help="scans measured per scenario (at least 3 folds)")
    args = parser.parse_args()
    d = Deployed.from_template()
    from lambdas.redirect.handler import CACHE_SECONDS

    tracing = "active" if d.redirect_traced else "pass-through"
    print(f"== deployed (template): redirect {d.redirect_mb} MB (X-Ray {tracing}), aggregator {d.scans_mb} MB, "
          f"compaction {d.compaction_mb} MB, batch {d.batch_size}, window {d.window_s:g} s, "
          f"{d.drains_per_month:,.0f} scheduled drains a month, redirect platform logs "
          f"{'on' if d.redirect_platform_logs else 'off'}")
    rng = random.Random(19)

    def work() -> dict[str, Any]:
        hot = br.hot_path_calls(200)
        res: dict[str, Any] = {"edge": {"cache_s": CACHE_SECONDS, "ms_per_scan": hot["p50 ms (real local calls)"],
                                        "calls_per_scan_hit": hot["hit"]}}
        for name, codes_n in SCENARIOS.items():
            for volume in VOLUMES:
                rate = volume * MILLION / MONTH_S
                scans = max(args.scans, math.ceil(rate * 3 * 180))  # three folds at least
                res[f"{name}@{volume}M"] = measure(codes_n, batch_sizes(rate, d, scans, rng), rng, rate, d)
        return res

    res = br.with_engines(work)
    edge = res.pop("edge")
    print(f"== redirect: {edge['calls_per_scan_hit']:.2f} AWS calls per scan on a cache hit, "
          f"{edge['ms_per_scan']:.2f} ms per scan (local), cache {edge['cache_s']:g} s")
    print("== per scan (measured)              write units  read units  batches  ms/batch  folds   fold ms")
    for case, m in res.items():
        print(f"   {case:34} {m['wru']:11.3f}  {m['rru']:10.3f}  {m['batches']:7.3f}  {m['ms_per_batch']:8.1f}"
              f"  {m['folds_per_scan']:6.3f}  {m['fold_s_per_scan'] * 1000:7.3f}")
    for label, traced in (("as deployed", False), ("with the redirect's X-Ray as before (Active)", True)):
        print(f"== $ per million scans, {label}")
        for name, codes_n in SCENARIOS.items():
            for volume in VOLUMES:
                lines = cost(res[f"{name}@{volume}M"], codes_n, volume * MILLION, d, edge, traced)
                print(f"   {name:12} {volume:4}M/month  total ${sum(lines.values()):5.2f}  " +
                      "  ".join(f"{k} {v:.3f}" for k, v in lines.items()))
    at_10 = {name: round(sum(cost(res[f"{name}@10M"], codes_n, 10 * MILLION, d, edge, d.redirect_traced).values()), 2)
             for name, codes_n in SCENARIOS.items()}
    print(json.dumps({"usd_per_million_scans": at_10}))
    sys.stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    main()
