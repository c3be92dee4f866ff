"""GET /api/codes cost at 50 and at 1,000 codes: DynamoDB requests and time
per list call, through the real authorizer and API handler, on DynamoDB Local.

The claim under test: the number of requests does not grow with the number
of codes (scans_30d comes from one Query of per-day rollups, not a query per
code). Then the same list, and the scope's analytics, while today's scans are
still open panes (counting through panes: readers fold the open days'
panes), at a team's daily share of its cap (``--day-scans``, 333,333 = 10M / 30).
Run: `make bench` or `.venv/bin/python benchmarks/bench_codes_list.py`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
                   "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
                   "POWERTOOLS_LOG_LEVEL": "ERROR", "TABLE_NAME": "bench", "IDEMPOTENCY_TABLE_NAME": "bench-idem"})

import boto3

warnings.filterwarnings("ignore", message="No application metrics")

from qrpro_cli.engines import _wait_for, free_port, start_dynamodb_local  # noqa: E402


def main() -> None:
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"bench-ddb-{port}.log"
    proc = start_dynamodb_local(None, port, log)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    try:
        _wait_for(boto3.client("dynamodb").list_tables, "DynamoDB Local", proc)
        run(_day_scans())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _day_scans() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--day-scans", type=int, default=333_333, help="scans in today's open panes (0: skip)")
    return int(parser.parse_args().day_scans)


def run(day_scans: int) -> None:
    from qrpro.data import accounts
    from qrpro.data.aws import ddb
    from qrpro.data.schema import create_tables
    from qrpro.services import codes
    from qrpro.services import keys as key_service
    from tests.conftest import InProcessApi

    create_tables(boto3.client("dynamodb"), "bench", "bench-idem")
    calls: list[str] = []
    ddb().meta.events.register("before-send.dynamodb.*", lambda request, **_: calls.append(
        request.headers.get("X-Amz-Target", b"").decode().rpartition(".")[2]))
    api = InProcessApi()
    print(f"{'codes':>6} {'requests/list':>14} {'by operation':<44} {'p50 ms':>8} {'p90 ms':>8}")
    for n in (50, 1000):
        now = int(time.time())
        user_id = accounts.create_account(f"{uuid.uuid4().hex[:8]}@example.com", "agency", now)
        key_id, token = key_service.create(user_id, "bench", now)
        caller = accounts.resolve_caller(user_id, key_id)
        for start in range(0, n, 250):
            codes.create_many(caller, [{"url": f"https://example.com/{i}", "label": f"code {i}"}
                                       for i in range(start, min(n, start + 250))], now)
        times, per_call = [], []
        for _ in range(10):
            calls.clear()
            t0 = time.perf_counter()
            reply = api.request("GET", "/api/codes", token)
            times.append((time.perf_counter() - t0) * 1000)
            assert reply.status == 200 and len(reply.json()["codes"]) == n
            per_call.append(list(calls))
        report(str(n), per_call, times)
    if day_scans:
        open_panes(api, calls, day_scans)


def report(label: str, per_call: list[list[str]], times: list[float]) -> None:
    ops = per_call[-1]
    summary = ", ".join(f"{op} x{ops.count(op)}" for op in dict.fromkeys(ops))
    print(f"{label:>6} {len(ops):>14} {summary:<44} {statistics.median(times):>8.1f} "
          f"{statistics.quantiles(times, n=10)[-1]:>8.1f}")


def open_panes(api: Any, calls: list[str], day_scans: int) -> None:
    """A team scope of 1,000 codes with ``day_scans`` of today in open panes of 8 scans (a
    batch at 10M a month): its list and analytics folding every pane (no ``panes.LIVE_LIMIT``),
    then as deployed before the day's first compaction (a reader gives up past the limit), the
    compaction, and, after one compaction period's scans more, the same reads as deployed."""
    from qrpro.config import settings
    from qrpro.data import accounts, panes
    from qrpro.data.counting import Scan
    from qrpro.data.table import query_items, table
    from qrpro.services import codes
    from qrpro.services import keys as key_service
    from qrpro.services import scans as scan_service

    now = int(time.time())
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    os.environ["PANES_FROM"] = today
    settings.cache_clear()
    user_id = accounts.create_account(f"{uuid.uuid4().hex[:8]}@example.com", "team", now)
    key_id, token = key_service.create(user_id, "bench", now)
    caller = accounts.resolve_caller(user_id, key_id)
    made = []
    for start in range(0, 1000, 250):
        made += codes.create_many(caller, [{"url": f"https://example.com/{i}"} for i in range(start, start + 250)],
                                  now)
    rng = random.Random(7)
    hours = max(1, time.gmtime(now).tm_hour)

    def write(n: int) -> None:
        for start in range(0, n, 8):
            batch = []
            for _ in range(min(8, n - start)):
                code = rng.choice(made)
                batch.append(Scan(id=uuid.uuid4().hex[:16], code_id=code["id"], scope=caller.scope, plan="team",
                                  hour=f"{today}-{rng.randrange(hours):02d}", country=rng.choice(("US", "DE", "FR")),
                                  device=rng.choice(("mobile", "desktop")), shortcode=code["shortcode"], codes=1000))
            assert not panes.put(batch, now)

    def reads(calls_each: int) -> None:
        for label, path in (("list", "/api/codes"), ("scope", "/api/analytics")):
            times, per_call = [], []
            for _ in range(calls_each):
                calls.clear()
                t1 = time.perf_counter()
                reply = api.request("GET", path, token)
                times.append((time.perf_counter() - t1) * 1000)
                assert reply.status == 200, reply.json()
                per_call.append(list(calls))
            report(label, per_call, times)

    write(day_scans)
    size = sum(len(str(i["s"])) + len(str(i["c"])) + 60 for i in query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"PANE#{caller.scope}#{today}"}}}))
    print(f"\n{day_scans:,} scans today in {-(-day_scans // 8):,} open panes (~{size / 1e6:.1f} MB), "
          "every pane folded by every read (no limit):")
    limit, panes.LIVE_LIMIT = panes.LIVE_LIMIT, 10**9
    reads(3)
    panes.LIVE_LIMIT = limit
    print(f"as deployed, before the day's first compaction (each read gives up past {limit:,} scans):")
    reads(3)
    t0 = time.perf_counter()
    scan_service.compact(now)
    print(f"the compaction of that day: {time.perf_counter() - t0:.1f} s")
    write(-(-day_scans // 96))
    print(f"then one compaction period's scans more ({-(-day_scans // 96):,}), read as deployed "
          f"(live below {panes.LIVE_LIMIT:,} scans at the last compaction, else the aggregates):")
    reads(10)


if __name__ == "__main__":
    main()
