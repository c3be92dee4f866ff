"""Cold import of every function's handler next to ``import boto3`` alone.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_coldstart.py
    .venv/bin/python benchmarks/bench_coldstart.py --runs 15

Each import runs in a fresh interpreter (what a new Lambda container pays
before its first request, minus the runtime's own start), the modules
alternated round by round so that load on the machine hits them alike;
medians of ``--runs``. Two clocks: wall time (what a request waits on a quiet
machine) and the process's CPU time (the same work, far less disturbed when
other jobs share the cores); the goals are judged on CPU time. The goals
(docs/performance.md): the api and export functions within boto3 + 150 ms,
the redirect within boto3 + 40 ms. Prints a table, then one JSON line with
the medians.
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
PROBE = ("import sys, time; sys.path[:0] = [{layers!r}, {root!r}]; w, c = time.perf_counter(), time.process_time(); "
         "import {module}; print(time.perf_counter() - w, time.process_time() - c)")


def import_ms(module: str) -> tuple[float, float]:
    """(wall, CPU) milliseconds of ``import module`` in a fresh interpreter."""
    code = PROBE.format(layers=str(ROOT / "layers"), root=str(ROOT), module=module)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV)
    wall, cpu = out.stdout.split()
    return float(wall) * 1000, float(cpu) * 1000


def measure(runs: int) -> dict[str, tuple[float, float]]:
    modules = {"boto3": "boto3", **{fn: f"lambdas.{fn}.handler" for fn in FUNCTIONS}}
    for module in modules.values():  # one unmeasured round: byte-compiled files in place
        import_ms(module)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in modules}
    for _ in range(runs):
        for name, module in modules.items():
            times[name].append(import_ms(module))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    medians = measure(args.runs)
    wall0, cpu0 = medians["boto3"]
    print(f"== cold import, fresh interpreters, median of {args.runs}: wall ms, CPU ms (CPU over boto3)")
    print(f"   {'import boto3':32} {wall0:7.1f} {cpu0:7.1f}")
    for fn in FUNCTIONS:
        wall, cpu = medians[fn]
        goal = GOALS_MS.get(fn)
        verdict = "" if goal is None else f"  goal +{goal:.0f}: {'met' if cpu - cpu0 <= goal else 'MISSED'}"
        print(f"   {'lambdas.' + fn + '.handler':32} {wall:7.1f} {cpu:7.1f} ({cpu - cpu0:+6.1f}){verdict}")
    print(json.dumps({"cold_import_ms": {name: {"wall": round(w, 1), "cpu": round(c, 1)}
                                         for name, (w, c) in medians.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
