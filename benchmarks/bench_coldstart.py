"""Cold import of every function's handler next to ``import boto3`` alone.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_coldstart.py
    .venv/bin/python benchmarks/bench_coldstart.py --runs 15

Each import runs in a fresh interpreter (what a new Lambda container pays
before its first request, minus the runtime's own start), the modules
alternated round by round so that load on the machine hits them alike;
medians of ``--runs``. The goals (docs/performance.md): the api and export
functions within boto3 + 150 ms, the redirect within boto3 + 40 ms. Prints a
table, then one JSON line with the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from infra.build_assets import FUNCTIONS  # noqa: E402  (the one list of functions)

GOALS_MS = {"api": 150.0, "export": 150.0, "redirect": 40.0}  # over boto3 alone
ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
       "AWS_SECRET_ACCESS_KEY": "local", "PYTHONDONTWRITEBYTECODE": "0"}
PROBE = ("import sys, time; sys.path[:0] = [{layers!r}, {root!r}]; t = time.perf_counter(); import {module}; "
         "print(time.perf_counter() - t)")


def import_ms(module: str) -> float:
    code = PROBE.format(layers=str(ROOT / "layers"), root=str(ROOT), module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV)
    return float(out.stdout.strip()) * 1000


def measure(runs: int) -> dict[str, float]:
    modules = {"boto3": "boto3", **{fn: f"lambdas.{fn}.handler" for fn in FUNCTIONS}}
    for module in modules.values():  # one unmeasured round: byte-compiled files in place
        import_ms(module)
    times: dict[str, list[float]] = {name: [] for name in modules}
    for _ in range(runs):
        for name, module in modules.items():
            times[name].append(import_ms(module))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    medians = measure(args.runs)
    boto3 = medians["boto3"]
    print(f"== cold import, fresh interpreters, median of {args.runs}")
    print(f"   {'import boto3':32} {boto3:7.1f} ms")
    for fn in FUNCTIONS:
        over = medians[fn] - boto3
        goal = GOALS_MS.get(fn)
        verdict = "" if goal is None else f"  goal +{goal:.0f}: {'met' if over <= goal else 'MISSED'}"
        print(f"   {'lambdas.' + fn + '.handler':32} {medians[fn]:7.1f} ms  (boto3 {over:+6.1f}){verdict}")
    print(json.dumps({"cold_import_ms": {name: round(v, 1) for name, v in medians.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
