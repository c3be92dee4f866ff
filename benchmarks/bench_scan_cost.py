"""What a scan costs, in dollars per million scans, from measured request counts.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_scan_cost.py
    .venv/bin/python benchmarks/bench_scan_cost.py --scans 300   # quicker, noisier

For 1 hot code, 100 codes (one account) and 10,000 codes (100 accounts of
100), at 1, 10 and 100 million scans a month spread evenly over the month:

1. the deployed configuration is read from the synthesized template (the
   redirect's and aggregator's memory, the scans mapping's batch size and
   batching window, the drain and compaction schedules);
2. each month's traffic becomes SQS batches as the mapping forms them (a
   Poisson number of scans per batching window, at least 1, at most the batch
   size), scans spread uniformly over the codes;
3. those batches run through the real aggregator (``lambdas.scans.handler``)
   against DynamoDB Local, counting the items it writes, its transactions and
   reads and its time per batch, twice: counting with markers (the design
   before panes, still used for days before ``qrpro:panesFrom``) and through
   panes as deployed, running the real compaction once per schedule period
   of scans (at least one period is simulated); a third run costs the panes
   with the trims of ``TRIMS``. The redirect's reads per scan follow from its
   cache window and each code's and account's scan rate;
4. the counts times the list prices below give $ per million scans, line by
   line (``docs/performance.md``, "What a scan costs").

The last line is the deployed design's result at 10 million scans a month, as
one JSON object: ``{"usd_per_million_scans": {"1_code": x, "100_codes": y,
"10000_codes": z}}``.

DynamoDB Local's ConsumedCapacity does not follow AWS's rules for
transactions, so write units are counted as AWS bills them: every item a
write touched (``Counting.written_keys``, ``updated_keys``, ``puts``), sized
after its batch, 1 unit per KB, 2 in a transaction (``write_units``). The
compaction's reads of the panes are costed from the panes' measured size:
each run reads every pane of the open days again, half a day's on average.

One more scenario is printed apart, not in the JSON: an agency scope with
10,000 codes, each scanned earlier that day, at 10 million scans a month (its
per-code day counters are full-size items).
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
from dataclasses import dataclass, replace
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
}
PLATFORM_LOG_BYTES = 300  # Lambda's START/END/REPORT lines per invocation in text format (~80 + 50 + 170 bytes)
RESPONSE_BYTES = 600  # a 302 with Location, Cache-Control and CloudFront's own headers, on the wire
POLLERS, POLLS_PER_MIN = 5, 3  # Lambda's SQS pollers at rest: long polls of 20 s each
SQS_MAX_RECEIVE = 10  # messages per ReceiveMessage / DeleteMessageBatch
CODES_PER_ACCOUNT = 100
SCENARIOS = {"1_code": 1, "100_codes": 100, "10000_codes": 10_000}
AGENCY = "agency: 10,000 codes in one scope, busy day, 10M/month"
VOLUMES = (1, 10, 100)  # million scans a month


@dataclass(frozen=True)
class Deployed:
    """What the template deploys, as the cost depends on it."""

    redirect_mb: int
    scans_mb: int
    batch_size: int
    window_s: float
    drains_per_month: float
    redirect_platform_logs: bool  # START/END/REPORT lines per invocation (off: JSON logs at system level WARN)
    compact_s: float  # the panes' compaction schedule (0: none)
    compaction_mb: int

    @classmethod
    def from_template(cls) -> Deployed:
        from qrpro_cli.template import Template

        t = Template.load()
        scans = t.function_by_name("scans")
        mapping = next(m for m in t.mappings() if m.function == scans.logical_id
                       and "Scans" in json.dumps(m.source) and "Dlq" not in json.dumps(m.source))
        drain = next(s for s in t.schedules() if s.function == scans.logical_id)
        compactor = t.function_by_name("compaction")
        compaction = next(s for s in t.schedules() if s.function == compactor.logical_id)
        minutes = _rate_minutes(drain.expression)
        redirect = t.function_by_name("redirect")
        logging = t.resources[redirect.logical_id]["Properties"].get("LoggingConfig", {})
        return cls(redirect_mb=redirect.memory, scans_mb=scans.memory,
                   redirect_platform_logs=logging.get("SystemLogLevel", "INFO") != "WARN",
                   batch_size=int(mapping.props.get("BatchSize", 10)),
                   window_s=float(mapping.props.get("MaximumBatchingWindowInSeconds", 0)),
                   drains_per_month=MONTH_S / 60 / minutes,
                   compact_s=_rate_minutes(compaction.expression) * 60, compaction_mb=compactor.memory)


def _rate_minutes(expression: str) -> float:
    """``rate(5 minutes)`` -> 5.0."""
    n, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return float(n) * {"minute": 1, "minutes": 1, "hour": 60, "hours": 60}[unit]


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


def _poisson(lam: float, rng: random.Random) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


def write_units(client: Any, keys: list[dict[str, Any]], transactional: bool = True) -> int:
    """Write units as AWS bills these writes: per KB of each item (its size after the write: every
    counter only grows), twice in a transaction; an item gone (a deleted parked scan) as 1 KB."""
    from qrpro.data.table import table

    unique = list({(key["pk"]["S"], key["sk"]["S"]): key for key in keys}.values())
    kb: dict[tuple[str, str], int] = {}
    for i in range(0, len(unique), 100):
        out = client.batch_get_item(RequestItems={table(): {"Keys": unique[i:i + 100]}})
        assert not out.get("UnprocessedKeys"), "DynamoDB Local left keys unprocessed"
        for item in out["Responses"][table()]:
            kb[(item["pk"]["S"], item["sk"]["S"])] = math.ceil(item_bytes(item) / 1024)
    return (2 if transactional else 1) * sum(kb.get((key["pk"]["S"], key["sk"]["S"]), 1) for key in keys)


def measure(codes_n: int, sizes: list[int], rng: random.Random, per_account: int = CODES_PER_ACCOUNT,
            plan_name: str = "team", busy_day: bool = False, compact_every: int = 0) -> dict[str, float]:
    """The aggregator over these batches, against DynamoDB Local: per scan. ``busy_day``: every code
    was scanned once earlier today (the per-code day counters hold them all). ``compact_every``
    (scans): count through panes (the template's ``PANES_FROM``), running the compaction after
    each such share of the scans and after the last; 0: count with markers."""
    from lambdas.scans import handler as consumer
    from qrpro.config import settings
    from qrpro.data import caps, counting, edge, panes
    from qrpro.data import keys as k
    from qrpro.data import table as tables
    from qrpro.data.table import table
    from qrpro.domain.codes import new_shortcode
    from qrpro.services import scans as scan_service
    from qrpro_cli.runtime import FakeContext

    accounts = [f"TEAM#{uuid.uuid4()}" for _ in range(max(1, codes_n // per_account))]
    drawn = [[rng.randrange(codes_n) for _ in range(size)] for size in sizes]
    codes = {i: (str(uuid.uuid4()), new_shortcode(), accounts[i % len(accounts)])
             for i in (range(codes_n) if busy_day else {i for b in drawn for i in b})}
    now = int(time.time())
    scope_codes = min(codes_n, per_account)  # what the redirect reads on the scope's profile (``codes_used``)
    if busy_day:
        earlier = [counting.parse(edge.scan_message(cid, scope, plan_name, now, "US", "mobile", codes=scope_codes))
                   for cid, _, scope in codes.values()]
        for (pk, sk), counter in counting.fold([s for s in earlier if s]).items():
            if sk.startswith("K#"):  # a put: one update of ~1,250 counters is past the 4 KB expression limit
                counting.ddb().put_item(TableName=table(), Item={
                    "pk": {"S": pk}, "sk": {"S": sk}, k.TTL: {"N": str(counter.ttl)},
                    **{name: {"N": str(n)} for name, n in counter.adds.items()}})
    for cid, sc, scope in codes.values():  # each code's SHORT# item (its lifetime count), as the API writes it
        counting.ddb().put_item(TableName=table(), Item={"pk": {"S": k.pk_short(sc)}, "sk": {"S": "SHORT"},
                                                          "code_id": {"S": cid}, "scope": {"S": scope},
                                                          "url": {"S": "https://example.com/landing-page"},
                                                          "status": {"S": "active"}, "type": {"S": "shortcode"}})
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "CA", "NL", "IN", "ES", "IT", "MX"]
    devices = ["mobile", "mobile", "mobile", "desktop", "tablet", "unknown"]
    raw = counting.ddb()  # the sizing goes around the spy
    spy = br.Counting(raw)
    real = counting.ddb
    os.environ["PANES_FROM"] = "2000-01-01" if compact_every else ""
    settings.cache_clear()
    panes._marked.clear()
    panes.WRITERS = 1  # the spy's counts stay exact (it is not thread-safe); the compaction's time errs high
    counting.ddb = caps.ddb = tables.ddb = panes.ddb = lambda: spy  # type: ignore[assignment]
    consumer._last_drain = time.monotonic()
    n = sum(sizes)
    elapsed = compacting = 0.0
    units = since = runs = 0
    try:
        for i, batch in enumerate(drawn):
            bodies = []
            for c in batch:
                cid, sc, scope = codes[c]
                bodies.append(edge.scan_message(cid, scope, plan_name, now, rng.choice(countries),
                                                rng.choice(devices), sc, f"split:{rng.randrange(2)}", scope_codes))
            t = time.perf_counter()
            out = consumer.handler({"Records": [{"messageId": str(j), "body": b} for j, b in enumerate(bodies)]},
                                   FakeContext("scans", str(i)))
            elapsed += time.perf_counter() - t
            assert out == {"batchItemFailures": []}, out
            since += len(batch)
            if compact_every and (since >= compact_every or i == len(drawn) - 1):
                t = time.perf_counter()
                scan_service.compact(now)
                compacting += time.perf_counter() - t
                runs += 1
                since = 0
            units += write_units(raw, spy.written_keys) + write_units(raw, spy.updated_keys, transactional=False) \
                + sum(math.ceil(item_bytes(item) / 1024) for item in spy.puts)
            spy.written_keys.clear()
            spy.updated_keys.clear()
            spy.puts.clear()
    finally:
        counting.ddb = caps.ddb = tables.ddb = panes.ddb = real  # type: ignore[assignment]
        os.environ.pop("PANES_FROM", None)
        settings.cache_clear()
    pane_bytes = sum(item_bytes(i) for i in _panes(raw, accounts, now)) / n
    fold_ms = 0.0
    if compact_every:  # what re-reading a day costs a run, per scan: read, decode, keep one per id, fold
        t = time.perf_counter()
        read = [s for scope in accounts for s in panes.read(scope, time.strftime("%Y-%m-%d", time.gmtime(now)))]
        counting.fold(read, part=counting.DAYS)
        fold_ms = (time.perf_counter() - t) * 1000 / max(1, len(read))
    return {"items": (spy.items_written + spy.calls.get("put_item", 0) + spy.calls.get("update_item", 0)) / n,
            "transactions": spy.calls.get("transact_write_items", 0) / n,
            "reads": (spy.calls.get("get_item", 0) + spy.calls.get("query", 0)
                      + spy.calls.get("batch_get_item", 0)) / n,
            "batches": len(sizes) / n, "ms_per_batch": elapsed * 1000 / len(sizes), "wru": units / n,
            "pane_bytes": pane_bytes, "compact_s_per_run": compacting / runs if runs else 0,
            "fold_ms_per_scan": fold_ms}


def _panes(client: Any, scopes: list[str], now: int) -> list[dict[str, Any]]:
    """Every pane the measured batches wrote (their size: what the compaction and readers read)."""
    from qrpro.data import keys as k
    from qrpro.data.table import query_items, table, to_item

    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return [to_item(i) for scope in scopes for i in query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": k.pk_pane(scope, day)}}})]


def cost(m: dict[str, float], codes_n: int, volume: float, d: Deployed, edge: dict[str, float],
         per_account: int = CODES_PER_ACCOUNT) -> dict[str, float]:
    """$ per million scans, line by line, for ``volume`` scans a month."""
    rate = volume / MONTH_S
    code_rate, account_rate = rate / codes_n, rate / max(1, codes_n // per_account)
    cache = edge["cache_s"]
    # a warm container re-reads SHORT# and the account's profile once per cache window in which it sees a scan
    redirect_reads = 1 / (1 + code_rate * cache) + 1 / (1 + account_rate * cache)
    redirect_s = math.ceil(edge["ms_per_scan"]) / 1000
    per_batch_msgs = 1 / m["batches"]
    receives = math.ceil(per_batch_msgs / SQS_MAX_RECEIVE) * m["batches"] * 2  # receive + delete batch
    fixed_sqs = POLLERS * POLLS_PER_MIN * MONTH_S / 60 / volume  # empty long polls, spread over the scans
    scans_s = math.ceil(m["ms_per_batch"]) / 1000 * m["batches"]
    runs = MONTH_S / d.compact_s if m.get("pane_bytes") else 0  # compactions a month
    # each run reads every pane of each open day again, half a day's on average (eventually consistent)
    pane_reads = runs / 30 * m.get("pane_bytes", 0) / 2 / 4096 * 0.5
    # a run as measured (the period's writes, its cap checks), plus re-reading half a day's scans on average
    compaction_s = runs * (m.get("compact_s_per_run", 0) + volume / 60 * m.get("fold_ms_per_scan", 0) / 1000) / volume
    lines = {
        "CloudFront": PRICE["cloudfront_request"] + RESPONSE_BYTES / 1e9 * PRICE["cloudfront_gb_out"],
        "redirect Lambda": PRICE["lambda_request"] + redirect_s * d.redirect_mb / 1024 * PRICE["lambda_gb_s"],
        "redirect logs": d.redirect_platform_logs * PLATFORM_LOG_BYTES / 1e9 * PRICE["logs_gb"],
        "redirect reads": redirect_reads * PRICE["ddb_rru"],
        "SQS": (1 + receives + fixed_sqs) * PRICE["sqs_request"],
        "DynamoDB writes": m["wru"] * PRICE["ddb_wru"],
        "aggregator reads": (m["reads"] + pane_reads) * PRICE["ddb_rru"],
        "aggregator Lambda": (m["batches"] + d.drains_per_month / volume) * PRICE["lambda_request"]
        + scans_s * d.scans_mb / 1024 * PRICE["lambda_gb_s"] + m["batches"] * PLATFORM_LOG_BYTES / 1e9
        * PRICE["logs_gb"],
        "compaction Lambda": runs / volume * PRICE["lambda_request"]
        + compaction_s * d.compaction_mb / 1024 * PRICE["lambda_gb_s"],
    }
    return {name: usd * MILLION for name, usd in lines.items()}


# -- candidates (paper: the real fold's item counts, no DynamoDB) -------------------------------------

def item_bytes(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rule: attribute names plus values (strings as UTF-8, a number
    about one byte per two digits)."""
    size = 0
    for name, value in item.items():
        (kind, v), = value.items()
        size += len(name) + (len(v) // 2 + 1 if kind == "N" else len(str(v).encode()))
    return size


def fold_items(codes_n: int, sizes: list[int], rng: random.Random) -> float:
    """Per scan: the aggregate items ``counting.fold`` writes for these batches (markers aside)."""
    from qrpro.data.counting import Scan, fold

    accounts = max(1, codes_n // CODES_PER_ACCOUNT)
    items = 0
    for size in sizes:
        batch = [Scan(id=f"{rng.getrandbits(128):032x}", code_id=str(uuid.UUID(int=c)), scope=f"TEAM#{c % accounts}",
                      plan="team", hour="2026-11-30-12", country="US", device="mobile", shortcode="abcdefg",
                      target="split:1")
                 for c in (rng.randrange(codes_n) for _ in range(size))]
        items += len(fold(batch))
    return items / sum(sizes)


TRIMS = "4 s window, eventual redirect reads (cache 3 s), 256 MB redirect"


def candidates(codes_n: int, volume: float, d: Deployed, edge: dict[str, float], markers: dict[str, float],
               panes: dict[str, float], trimmed: dict[str, float], rng: random.Random) -> dict[str, float]:
    """$ per million scans for each design: the measured ones (markers, panes) and the paper ones
    (docs/performance.md, "What a scan costs")."""
    rate, scans = volume / MONTH_S, 2000
    current = cost(markers, codes_n, volume, d, edge)
    edge_usd = sum(current[k] for k in ("CloudFront", "redirect Lambda", "redirect logs", "redirect reads"))
    wru = PRICE["ddb_wru"] * MILLION
    two_s = fold_items(codes_n, batch_sizes(rate, d, scans, rng), rng)
    twenty = replace(d, batch_size=1000, window_s=20)
    twenty_s = batch_sizes(rate, twenty, scans, rng)
    sqs_20 = cost({**markers, "batches": len(twenty_s) / sum(twenty_s)}, codes_n, volume, d, edge)["SQS"]
    trim = replace(d, window_s=4, redirect_mb=256)
    trimmed_lines = cost(trimmed, codes_n, volume, trim, {**edge, "cache_s": 3})
    trimmed_lines["redirect reads"] /= 2  # eventually consistent: half a read unit
    return {
        "markers (measured)": sum(current.values()),
        "markers, window 20 s / batch 1,000": edge_usd + sqs_20 + (1 + fold_items(codes_n, twenty_s, rng)) * 2 * wru
        + current["aggregator Lambda"],
        "stream checkpoint, no markers, no transactions": edge_usd + wru + two_s * wru + current["aggregator Lambda"],
        "panes (measured, as deployed)": sum(cost(panes, codes_n, volume, d, edge).values()),
        f"panes + trims (measured: {TRIMS})": sum(trimmed_lines.values()),
    }


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--scans", type=int, default=1000, help="scans measured per scenario")
    args = parser.parse_args()
    d = Deployed.from_template()
    from lambdas.redirect.handler import CACHE_SECONDS

    print(f"== deployed (template): redirect {d.redirect_mb} MB, aggregator {d.scans_mb} MB, batch {d.batch_size}, "
          f"window {d.window_s:g} s, {d.drains_per_month:,.0f} scheduled drains a month, compaction every "
          f"{d.compact_s:g} s, redirect platform logs {'on' if d.redirect_platform_logs else 'off'}")
    rng = random.Random(19)

    def work() -> dict[str, Any]:
        hot = br.hot_path_calls(200)
        res: dict[str, Any] = {"edge": {"cache_s": CACHE_SECONDS, "ms_per_scan": hot["p50 ms (real local calls)"],
                                        "calls_per_scan_hit": hot["hit"]}}

        def both(codes_n: int, volume: float, **kw: Any) -> dict[str, dict[str, float]]:
            rate = volume * MILLION / MONTH_S
            per_run = math.ceil(rate * d.compact_s)  # scans between two compactions
            out = {"markers": measure(codes_n, batch_sizes(rate, d, args.scans, rng), rng, **kw)}
            for name, settings in (("panes", d), ("trimmed", replace(d, window_s=4))):
                sizes = batch_sizes(rate, settings, max(args.scans, per_run), rng)
                out[name] = measure(codes_n, sizes, rng, compact_every=per_run, **kw)
            return out

        for name, codes_n in SCENARIOS.items():
            for volume in VOLUMES:
                res[f"{name}@{volume}M"] = both(codes_n, volume)
        res[AGENCY] = both(10_000, 10, per_account=10_000, plan_name="agency", busy_day=True)
        return res

    res = br.with_engines(work)
    edge = res.pop("edge")
    print(f"== redirect: {edge['calls_per_scan_hit']:.2f} AWS calls per scan on a cache hit, "
          f"{edge['ms_per_scan']:.2f} ms per scan (local), cache {edge['cache_s']:g} s")
    print("== aggregator, per scan (measured)               items  transactions  reads  batches  ms/batch  write units")
    for case, ms in res.items():
        for design in ("markers", "panes"):
            m = ms[design]
            print(f"   {case[:34]:34} {design:8} {m['items']:6.2f}  {m['transactions']:12.3f}  {m['reads']:5.3f}"
                  f"  {m['batches']:7.3f}  {m['ms_per_batch']:8.1f}  {m['wru']:11.2f}")
    for design in ("markers", "panes"):
        print(f"== $ per million scans, {design}" + (" (as deployed)" if design == "panes" else " (before)"))
        for name, codes_n in SCENARIOS.items():
            for volume in VOLUMES:
                lines = cost(res[f"{name}@{volume}M"][design], codes_n, volume * MILLION, d, edge)
                print(f"   {name:12} {volume:4}M/month  total ${sum(lines.values()):5.2f}  " +
                      "  ".join(f"{k} {v:.3f}" for k, v in lines.items()))
        lines = cost(res[AGENCY][design], 10_000, 10 * MILLION, d, edge, per_account=10_000)
        print(f"   {AGENCY}: total ${sum(lines.values()):5.2f}  "
              + "  ".join(f"{k} {v:.3f}" for k, v in lines.items()))
    print("== candidates, $ per million scans (docs/performance.md)")
    table_rows: dict[str, list[float]] = {}
    for name, codes_n in SCENARIOS.items():
        for volume in VOLUMES:
            ms = res[f"{name}@{volume}M"]
            for cand, usd in candidates(codes_n, volume * MILLION, d, edge, ms["markers"], ms["panes"],
                                        ms["trimmed"], rng).items():
                table_rows.setdefault(cand, []).append(usd)
    print("   " + " " * 78 + "".join(f"{n.split('_')[0]}c/{v}M".rjust(10) for n in SCENARIOS for v in VOLUMES))
    for cand, values in table_rows.items():
        print(f"   {cand:78}" + "".join(f"{v:10.2f}" for v in values))
    at_10 = {name: round(sum(cost(res[f"{name}@10M"]["panes"], codes_n, 10 * MILLION, d, edge).values()), 2)
             for name, codes_n in SCENARIOS.items()}
    print(json.dumps({"usd_per_million_scans": at_10}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
