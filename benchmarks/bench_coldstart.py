"""Cold import of every function's handler next to ``import boto3`` alone.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_coldstart.py
    .venv/bin/python benchmarks/bench_coldstart.py --runs 16
    .venv/bin/python benchmarks/bench_coldstart.py --python /path/to/python3.13  # with the layer's packages

Each import runs in a fresh interpreter (what a new Lambda container pays
before its first request, minus the runtime's own start), the modules
alternated round by round so that load on the machine hits them alike, each
round from another stack depth (``DEPTHS``); medians of ``--runs``. Two
clocks: wall time (what a request waits on a quiet machine) and the
process's CPU time (the same work, far less disturbed when other jobs share
the cores); the goals are judged on CPU time. The goals
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
# The import runs {depth} Python frames deep: see DEPTHS.
PROBE = ("import sys, time; sys.path[:0] = [{layers!r}, {root!r}]\n"
         "def at(n):\n"
         "    if n:\n"
         "        return at(n - 1)\n"
         "    w, c = time.perf_counter(), time.process_time()\n"
         "    import {module}\n"
         "    return time.perf_counter() - w, time.process_time() - c\n"
         "print(*at({depth}))")
# CPython allocates its frame stack in chunks and frees a chunk as soon as the stack drops below it: an
# import whose deepest, busiest recursion (a regular expression's parser: urllib3 compiles a dozen at
# import) sits on a chunk's edge maps and unmaps memory thousands of times (strace: ~6,000 munmap
# against ~16) and costs 50-150 ms more CPU. Where the edge falls depends on how deep the runtime
# already is when it imports the handler, which differs between Lambda's bootstrap and this probe; so
# each round imports from another depth, and the medians are over depths as much as over runs.
DEPTHS = (0, 4, 8, 12, 16, 20, 24, 28)


def import_ms(module: str, python: str = sys.executable, depth: int = 0) -> tuple[float, float]:
    """(wall, CPU) milliseconds of ``import module`` in a fresh interpreter, ``depth`` frames deep."""
    code = PROBE.format(layers=str(ROOT / "layers"), root=str(ROOT), module=module, depth=depth)
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, env=ENV)
    wall, cpu = out.stdout.split()
    return float(wall) * 1000, float(cpu) * 1000


def measure(runs: int, python: str = sys.executable) -> dict[str, tuple[float, float]]:
    modules = {"boto3": "boto3", **{fn: f"lambdas.{fn}.handler" for fn in FUNCTIONS}}
    for module in modules.values():  # one unmeasured round: byte-compiled files in place
        import_ms(module, python)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in modules}
    for run in range(runs):
        for name, module in modules.items():
            times[name].append(import_ms(module, python, DEPTHS[run % len(DEPTHS)]))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=len(DEPTHS))
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the imports (one with the layer's packages installed)")
    args = parser.parse_args()
    medians = measure(args.runs, args.python)
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
