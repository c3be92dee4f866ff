"""GET /api/codes cost at 50 and at 1,000 codes: DynamoDB requests and time
per list call, through the real authorizer and API handler, on DynamoDB Local.

The claim under test: the number of requests does not grow with the number
of codes (scans_30d comes from one Query of per-day rollups, not a query per
code). Then the same list, and the scope's analytics, for a team at its cap
(``--day-scans``, 333,333 = 10M / 30, over 1,000 codes) at three moments of
the compaction (docs/analytics.md, "How a scan is counted"): before the day's
first fold (its first minutes of scans, nothing folded), just after a fold of
the whole day, and mid-period (half the scans a fold period brings, unfolded);
readers add what no fold has reached yet.
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
    """A team scope of 1,000 codes at its cap: its list and analytics at three moments."""
    from qrpro.data import accounts, panes
    from qrpro.domain.scan_codec import Job, Scan
    from qrpro.services import codes
    from qrpro.services import keys as key_service
    from qrpro.services import scans as scan_service

    now = int(time.time())
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    user_id = accounts.create_account(f"{uuid.uuid4().hex[:8]}@example.com", "team", now)
    key_id, token = key_service.create(user_id, "bench", now)
    caller = accounts.resolve_caller(user_id, key_id)
    made = []
    for start in range(0, 1000, 250):
        made += codes.create_many(caller, [{"url": f"https://example.com/{i}"} for i in range(start, start + 250)],
                                  now)
    rng = random.Random(7)
    hours = max(1, time.gmtime(now).tm_hour)
    period = scan_service.FOLD_AFTER + 60 + panes.SETTLE  # the longest a scan waits for its fold
    per_period = round(day_scans / 86_400 * period)

    def write(n: int, sent: int) -> None:
        """``n`` scans in batches of 8 (a batch at 10M a month), sent at ``sent``."""
        for start in range(0, n, 8):
            batch = []
            for _ in range(min(8, n - start)):
                code = rng.choice(made)
                batch.append(Scan(id=uuid.uuid4().hex, code_id=code["id"], scope=caller.scope, plan="team",
                                  hour=f"{today}-{rng.randrange(hours):02d}", country=rng.choice(("US", "DE", "FR")),
                                  device=rng.choice(("mobile", "desktop")), codes=1000, sent_ms=sent * 1000))
            assert not panes.put(batch, now)

    def fence(at: int) -> None:
        panes._fences.update(at=-1e9)
        panes.record_fence(at)

    def fold() -> float:
        t0 = time.perf_counter()
        seq = panes.take(0)
        scan_service.fold(Job(caller.scope, today, seq), now, eager=True)
        return time.perf_counter() - t0

    def reads(label: str, calls_each: int = 10) -> None:
        print(label)
        for name, path in (("list", "/api/codes"), ("scope", "/api/analytics")):
            times, per_call = [], []
            for _ in range(calls_each):
                calls.clear()
                t1 = time.perf_counter()
                reply = api.request("GET", path, token)
                times.append((time.perf_counter() - t1) * 1000)
                assert reply.status == 200, reply.json()
                per_call.append(list(calls))
            report(name, per_call, times)

    fence(now - 7200)
    write(per_period, now)  # the day's first minutes: nothing folded yet
    reads(f"before the day's first fold ({per_period:,} scans, {period} s of them, in panes, nothing folded):")
    fence(now - 3600)  # what follows was sent after this fence: its panes' windows start there
    write(day_scans - per_period, now - 3700)
    took = fold()
    print(f"(the fold of the rest of the day, {day_scans - per_period:,} scans: {took:.1f} s here)")
    fence(now - 200)
    reads(f"just after a fold of the whole day ({day_scans:,} scans folded, none waiting):")
    write(per_period // 2, now)
    reads(f"mid-period ({per_period // 2:,} scans waiting for the next fold):")
    write(per_period - per_period // 2, now)
    reads(f"just before the next fold ({per_period:,} scans waiting, the longest they wait):")


if __name__ == "__main__":
    main()
