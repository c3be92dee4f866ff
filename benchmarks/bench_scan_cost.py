"""What a scan costs, in dollars per million scans, from measured request counts.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_scan_cost.py
    .venv/bin/python benchmarks/bench_scan_cost.py --scans 300   # quicker, noisier

For 1 hot code, 100 codes (one account) and 10,000 codes (100 accounts of
100), at 1, 10 and 100 million scans a month spread evenly over the month:

1. the deployed configuration is read from the synthesized template (the
   redirect's and aggregator's memory, the scans mapping's batch size and
   batching window, the drain schedule);
2. each month's traffic becomes SQS batches as the mapping forms them (a
   Poisson number of scans per batching window, at least 1, at most the batch
   size), scans spread uniformly over the codes;
3. those batches run through the real aggregator (``lambdas.scans.handler``)
   against DynamoDB Local, counting the items it writes, its transactions and
   reads and its time per batch; the redirect's reads per scan follow from its
   cache window and each code's and account's scan rate; each batch's panes
   (the designed, not built, panes candidate: ``pane_items``) are put there
   too, timed apart;
4. the counts times the list prices below give $ per million scans, line by
   line (``docs/performance.md``, "What a scan costs").

The last line is the result at 10 million scans a month, as one JSON object:
``{"usd_per_million_scans": {"1_code": x, "100_codes": y, "10000_codes": z}}``.

DynamoDB Local's ConsumedCapacity does not follow AWS's rules for
transactions, so write units are counted as AWS bills them: every item a
``TransactWriteItems`` wrote (``Counting.written_keys``), sized after its batch, 2 units per KB
(``write_units``).

One more scenario is printed apart, not in the JSON: an agency scope with
10,000 codes, each scanned earlier that day, at 10 million scans a month (its
per-code day counters are full-size items).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
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
    "firehose_gb": 0.029,  # Direct PUT ingestion, each record rounded up to 5 KB
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
}
FIREHOSE_BUFFER_S = 60  # Firehose's default S3 buffer interval: one object a minute
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

    @classmethod
    def from_template(cls) -> Deployed:
        from qrpro_cli.template import Template

        t = Template.load()
        scans = t.function_by_name("scans")
        mapping = next(m for m in t.mappings() if m.function == scans.logical_id
                       and "Scans" in json.dumps(m.source) and "Dlq" not in json.dumps(m.source))
        drain = next(s for s in t.schedules() if s.function == scans.logical_id)
        minutes = _rate_minutes(drain.expression)
        redirect = t.function_by_name("redirect")
        logging = t.resources[redirect.logical_id]["Properties"].get("LoggingConfig", {})
        return cls(redirect_mb=redirect.memory, scans_mb=scans.memory,
                   redirect_platform_logs=logging.get("SystemLogLevel", "INFO") != "WARN",
                   batch_size=int(mapping.props.get("BatchSize", 10)),
                   window_s=float(mapping.props.get("MaximumBatchingWindowInSeconds", 0)),
                   drains_per_month=MONTH_S / 60 / minutes)


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


def write_units(client: Any, keys: list[dict[str, Any]]) -> int:
    """Write units as AWS bills these transactional writes: 2 per KB of each item (its size after the
    write: every counter only grows), 2 for an item gone (a deleted parked scan)."""
    from qrpro.data.table import table

    unique = list({(key["pk"]["S"], key["sk"]["S"]): key for key in keys}.values())
    kb: dict[tuple[str, str], int] = {}
    for i in range(0, len(unique), 100):
        out = client.batch_get_item(RequestItems={table(): {"Keys": unique[i:i + 100]}})
        assert not out.get("UnprocessedKeys"), "DynamoDB Local left keys unprocessed"
        for item in out["Responses"][table()]:
            kb[(item["pk"]["S"], item["sk"]["S"])] = math.ceil(item_bytes(item) / 1024)
    return sum(2 * kb.get((key["pk"]["S"], key["sk"]["S"]), 1) for key in keys)


def measure(codes_n: int, sizes: list[int], rng: random.Random, per_account: int = CODES_PER_ACCOUNT,
            plan_name: str = "team", busy_day: bool = False) -> dict[str, float]:
    """The aggregator over these batches, against DynamoDB Local: per scan. ``busy_day``: every code
    was scanned once earlier today (the per-code day counters hold them all)."""
    from lambdas.scans import handler as consumer
    from qrpro.data import caps, counting, edge
    from qrpro.data import keys as k
    from qrpro.data import table as tables
    from qrpro.data.table import table
    from qrpro.domain.codes import new_shortcode
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
    for cid, sc, _ in codes.values():  # each scan also adds to its code's scans_total on SHORT#
        counting.ddb().put_item(TableName=table(), Item={"pk": {"S": k.pk_short(sc)}, "sk": {"S": "SHORT"},
                                                          "code_id": {"S": cid}})
    countries = ["US", "DE", "FR", "GB", "JP", "BR", "CA", "NL", "IN", "ES", "IT", "MX"]
    devices = ["mobile", "mobile", "mobile", "desktop", "tablet", "unknown"]
    raw = counting.ddb()  # the panes design's puts and the sizing go around the spy
    spy = br.Counting(raw)
    real = counting.ddb
    counting.ddb = caps.ddb = tables.ddb = lambda: spy  # type: ignore[assignment]
    consumer._last_drain = time.monotonic()
    n = sum(sizes)
    elapsed = pane_s = 0.0
    units = 0
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
            units += write_units(raw, spy.written_keys)
            spy.written_keys.clear()
            t = time.perf_counter()
            for item in pane_items([s for s in map(counting.parse, bodies) if s is not None], now):
                raw.put_item(TableName=table(), Item=item)
            pane_s += time.perf_counter() - t
    finally:
        counting.ddb = caps.ddb = tables.ddb = real  # type: ignore[assignment]
    return {"items": spy.items_written / n, "transactions": spy.calls.get("transact_write_items", 0) / n,
            "reads": (spy.calls.get("get_item", 0) + spy.calls.get("query", 0)) / n,
            "batches": len(sizes) / n, "ms_per_batch": elapsed * 1000 / len(sizes),
            "pane_ms_per_batch": pane_s * 1000 / len(sizes), "wru": units / n}


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
    lines = {
        "CloudFront": PRICE["cloudfront_request"] + RESPONSE_BYTES / 1e9 * PRICE["cloudfront_gb_out"],
        "redirect Lambda": PRICE["lambda_request"] + redirect_s * d.redirect_mb / 1024 * PRICE["lambda_gb_s"],
        "redirect logs": d.redirect_platform_logs * PLATFORM_LOG_BYTES / 1e9 * PRICE["logs_gb"],
        "redirect reads": redirect_reads * PRICE["ddb_rru"],
        "SQS": (1 + receives + fixed_sqs) * PRICE["sqs_request"],
        "DynamoDB writes": m["wru"] * PRICE["ddb_wru"],
        "aggregator reads": m["reads"] * PRICE["ddb_rru"],
        "aggregator Lambda": (m["batches"] + d.drains_per_month / volume) * PRICE["lambda_request"]
        + scans_s * d.scans_mb / 1024 * PRICE["lambda_gb_s"] + m["batches"] * PLATFORM_LOG_BYTES / 1e9
        * PRICE["logs_gb"],
    }
    return {name: usd * MILLION for name, usd in lines.items()}


# -- candidates (paper: the real fold's item counts, no DynamoDB) -------------------------------------

COMPACT_EVERY_S = 900


def _short_target(target: str) -> str:
    """``default`` -> ``d``, ``fallback`` -> ``f``, ``rule:3`` -> ``r3``, ``split:1`` -> ``s1``."""
    kind, _, index = target.partition(":")
    return kind[0] + index


def pane_items(scans: list[Any], now: int) -> list[dict[str, Any]]:
    """The panes design's writes for one batch (docs/analytics.md, "Designed, not built: counting
    through panes"): one item per scope and UTC day, holding a table of the batch's codes and one
    row per scan (its 128-bit id in base64, the code's row, country, device, target, and the hour
    only where the plan keeps hourly aggregates)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for scan in scans:
        groups.setdefault((scan.scope, scan.day), []).append(scan)
    out = []
    for (scope, day), group in sorted(groups.items()):
        codes = sorted({(s.code_id, s.shortcode) for s in group})
        row = {code_id: i for i, (code_id, _) in enumerate(codes)}
        rows = [" ".join((base64.urlsafe_b64encode(bytes.fromhex(s.id)).decode()[:22], str(row[s.code_id]),
                          s.country, s.device[0], _short_target(s.target), s.hour[11:] if s.hourly else "")).rstrip()
                for s in group]
        out.append({"pk": {"S": f"PANE#{scope}#{day}"}, "sk": {"S": uuid.uuid4().hex},
                    "ttl": {"N": str(now + 16 * 86_400)}, "c": {"S": "\n".join(f"{c} {sc}" for c, sc in codes)},
                    "s": {"S": "\n".join(rows)}})
    return out


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size by DynamoDB's rule: attribute names plus values (strings as UTF-8, a number
    about one byte per two digits)."""
    size = 0
    for name, value in item.items():
        (kind, v), = value.items()
        size += len(name) + (len(v) // 2 + 1 if kind == "N" else len(str(v).encode()))
    return size


def fold_items(codes_n: int, sizes: list[int], rng: random.Random) -> dict[str, float]:
    """Per scan: the aggregate items ``counting.fold`` writes for these batches (markers aside),
    and the panes design's writes for them (write units and bytes)."""
    from qrpro.data.counting import Scan, fold

    accounts = max(1, codes_n // CODES_PER_ACCOUNT)
    items = pane_wru = pane_bytes = 0
    for size in sizes:
        batch = [Scan(id=f"{rng.getrandbits(128):032x}", code_id=str(uuid.UUID(int=c)), scope=f"TEAM#{c % accounts}",
                      plan="team", hour="2026-11-30-12", country="US", device="mobile", shortcode="abcdefg",
                      target="split:1")
                 for c in (rng.randrange(codes_n) for _ in range(size))]
        items += len(fold(batch))
        panes = [item_bytes(i) for i in pane_items(batch, 0)]
        pane_wru += sum(math.ceil(b / 1024) for b in panes)
        pane_bytes += sum(panes)
    n = sum(sizes)
    return {"items": items / n, "batches": len(sizes) / n, "pane_wru": pane_wru / n, "pane_bytes": pane_bytes / n}


@dataclass(frozen=True)
class Panes:
    """The panes design's settings that move its cost."""

    window_s: float  # the scans mapping's batching window (analytics are this far behind, plus a second)
    compact_s: float  # how often the compaction folds the panes into the aggregate items
    eventual_reads: bool  # the redirect's SHORT#/profile reads eventually consistent (half a read unit)
    redirect_mb: int


def panes_cost(codes_n: int, volume: float, d: Deployed, edge: dict[str, float], m: dict[str, float],
               p: Panes, rng: random.Random) -> float:
    """$ per million scans for the panes design: the redirect and SQS as today, one pane per scope and
    day of each batch (its measured put time per batch), a compaction that re-reads each active
    scope-day's panes (half a day's on average) and sets every aggregate item its scans touched."""
    rate, scans = volume / MONTH_S, 2000
    settings = replace(d, window_s=p.window_s, redirect_mb=p.redirect_mb)
    batches = fold_items(codes_n, batch_sizes(rate, settings, scans, rng), rng)
    compacted = fold_items(codes_n, batch_sizes(rate, replace(d, window_s=p.compact_s, batch_size=10**9),
                                                scans, rng), rng)
    lines = cost({**m, "batches": batches["batches"], "ms_per_batch": m["pane_ms_per_batch"]}, codes_n, volume,
                 settings, edge)
    runs_per_day = 86_400 / p.compact_s
    reads = runs_per_day * batches["pane_bytes"] / 2 / 4096 * 0.5  # eventually consistent: 0.5 unit per 4 KB
    edge_usd = (lines["CloudFront"] + lines["redirect Lambda"] + lines["redirect logs"]
                + lines["redirect reads"] * (0.5 if p.eventual_reads else 1))
    return (edge_usd + lines["SQS"] + lines["aggregator Lambda"]
            + ((batches["pane_wru"] + compacted["items"]) * PRICE["ddb_wru"] + reads * PRICE["ddb_rru"]) * MILLION)


TRIMMED = Panes(window_s=4, compact_s=3600, eventual_reads=True, redirect_mb=256)


def candidates(codes_n: int, volume: float, d: Deployed, edge: dict[str, float], m: dict[str, float],
               rng: random.Random) -> dict[str, float]:
    """$ per million scans for each candidate design (docs/performance.md, "What a scan costs")."""
    rate, scans = volume / MONTH_S, 2000
    current = cost(m, codes_n, volume, d, edge)
    edge_usd = sum(current[k] for k in ("CloudFront", "redirect Lambda", "redirect logs", "redirect reads"))
    agg_lambda = current["aggregator Lambda"]

    def batches(window: float, size: int) -> dict[str, float]:
        return fold_items(codes_n, batch_sizes(rate, replace(d, batch_size=size, window_s=window), scans, rng), rng)

    wru = PRICE["ddb_wru"] * MILLION
    two_s, twenty_s = batches(d.window_s, d.batch_size), batches(20, 1000)
    sqs_20 = cost({**m, "batches": twenty_s["batches"]}, codes_n, volume, d, edge)["SQS"]
    compact = batches(COMPACT_EVERY_S, 10**9)
    per_minute = batches(FIREHOSE_BUFFER_S, 10**9)
    objects = MONTH_S / FIREHOSE_BUFFER_S / volume  # per scan
    firehose = (5 * 1024 / 1e9 * PRICE["firehose_gb"] + objects * (PRICE["s3_put"] + PRICE["s3_get"]
                + PRICE["lambda_request"])) * MILLION
    designed = Panes(window_s=d.window_s, compact_s=COMPACT_EVERY_S, eventual_reads=False, redirect_mb=d.redirect_mb)
    return {
        "current": sum(current.values()),
        "current, window 20 s / batch 1,000": edge_usd + sqs_20 + (1 + twenty_s["items"]) * 2 * wru + agg_lambda,
        "stream checkpoint, no markers, no transactions": edge_usd + wru
        + two_s["items"] * wru + agg_lambda,
        "panes as designed (2 s window, 15-min compaction)": panes_cost(codes_n, volume, d, edge, m, designed, rng),
        "panes + every trim (4 s, hourly, eventual reads, 256 MB)": panes_cost(codes_n, volume, d, edge, m, TRIMMED,
                                                                              rng),
        "Firehose to S3 (60 s) + panes + 15-min compaction": edge_usd + firehose
        + (per_minute["pane_wru"] + compact["items"]) * wru,
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
          f"window {d.window_s:g} s, {d.drains_per_month:,.0f} scheduled drains a month, redirect platform logs "
          f"{'on' if d.redirect_platform_logs else 'off'}")
    rng = random.Random(19)

    def work() -> dict[str, Any]:
        hot = br.hot_path_calls(200)
        res: dict[str, Any] = {"edge": {"cache_s": CACHE_SECONDS, "ms_per_scan": hot["p50 ms (real local calls)"],
                                        "calls_per_scan_hit": hot["hit"]}}
        for name, codes_n in SCENARIOS.items():
            for volume in VOLUMES:
                sizes = batch_sizes(volume * MILLION / MONTH_S, d, args.scans, rng)
                res[f"{name}@{volume}M"] = measure(codes_n, sizes, rng)
        sizes = batch_sizes(10 * MILLION / MONTH_S, d, args.scans, rng)
        res[AGENCY] = measure(10_000, sizes, rng, per_account=10_000, plan_name="agency", busy_day=True)
        return res

    res = br.with_engines(work)
    edge = res.pop("edge")
    print(f"== redirect: {edge['calls_per_scan_hit']:.2f} AWS calls per scan on a cache hit, "
          f"{edge['ms_per_scan']:.2f} ms per scan (local), cache {edge['cache_s']:g} s")
    print("== aggregator, per scan (measured)      items  transactions  reads  batches  ms/batch  write units"
          "  panes: ms/batch")
    for case, m in res.items():
        print(f"   {case:34} {m['items']:6.2f}  {m['transactions']:12.3f}  {m['reads']:5.3f}  {m['batches']:7.3f}"
              f"  {m['ms_per_batch']:8.1f}  {m['wru']:11.2f}  {m['pane_ms_per_batch']:15.1f}")
    print("== $ per million scans (current design)")
    at_10: dict[str, float] = {}
    for name, codes_n in SCENARIOS.items():
        for volume in VOLUMES:
            lines = cost(res[f"{name}@{volume}M"], codes_n, volume * MILLION, d, edge)
            total = sum(lines.values())
            print(f"   {name:12} {volume:4}M/month  total ${total:5.2f}  " +
                  "  ".join(f"{k} {v:.3f}" for k, v in lines.items()))
            if volume == 10:
                at_10[name] = round(total, 2)
    lines = cost(res[AGENCY], 10_000, 10 * MILLION, d, edge, per_account=10_000)
    print(f"   {AGENCY}: total ${sum(lines.values()):5.2f}  " + "  ".join(f"{k} {v:.3f}" for k, v in lines.items()))
    print("== candidates, $ per million scans (paper: the real fold's item counts; see docs/performance.md)")
    table_rows: dict[str, list[float]] = {}
    for name, codes_n in SCENARIOS.items():
        for volume in VOLUMES:
            for cand, usd in candidates(codes_n, volume * MILLION, d, edge, res[f"{name}@{volume}M"], rng).items():
                table_rows.setdefault(cand, []).append(usd)
    print("   " + " " * 58 + "".join(f"{n.split('_')[0]}c/{v}M".rjust(12) for n in SCENARIOS for v in VOLUMES))
    for cand, values in table_rows.items():
        print(f"   {cand:58}" + "".join(f"{v:12.2f}" for v in values))
    print(json.dumps({"usd_per_million_scans": at_10}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
