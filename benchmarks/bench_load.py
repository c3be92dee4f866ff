"""A mixed load on a fresh local stack: throughput and p50/p99 per operation.

60 % scans, 20 % GET code, 10 % PATCH, 5 % create, 5 % list, from concurrent
clients on loopback; bounded by request count and time. Prints a JSON summary
and checks that every counter is exact afterwards. Run: `make bench`, or
`.venv/bin/python benchmarks/bench_load.py [requests] [workers]`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import load
from tests.e2e.conftest import start_stack, stop_stack_process


def main() -> None:
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp), "--in-memory", "--workers", "4")
        try:
            result, seeded = load.run(stack, accounts=5, codes_per_account=10, workers=workers, requests=requests,
                                      seconds=600)
            totals = load.wait_for_scans(stack, seeded, result, timeout=120)
            exact = totals == {cid: result.scans.get(cid, 0) for cid in totals}
            summary = result.summary() | {"workers": workers, "scan_counts_exact": exact}
            print(json.dumps(summary, indent=2))
            if result.server_errors() or not exact:
                raise SystemExit("load run failed: server errors or inexact counts")
        finally:
            stop_stack_process(stack.proc)


if __name__ == "__main__":
    main()
