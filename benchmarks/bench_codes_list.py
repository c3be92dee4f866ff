"""GET /api/codes cost at 50 and at 1,000 codes: DynamoDB requests and time
per list call, through the real authorizer and API handler, on DynamoDB Local.

The claim under test: the number of requests does not grow with the number
of codes (scans_30d comes from one Query of per-day rollups, not a query per
code). Run: `make bench` or `.venv/bin/python benchmarks/bench_codes_list.py`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

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
        run()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run() -> None:
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
        ops = per_call[-1]
        summary = ", ".join(f"{op} x{ops.count(op)}" for op in dict.fromkeys(ops))
        print(f"{n:>6} {len(ops):>14} {summary:<44} {statistics.median(times):>8.1f} "
              f"{statistics.quantiles(times, n=10)[-1]:>8.1f}")


if __name__ == "__main__":
    main()
