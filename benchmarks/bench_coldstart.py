"""Cold import of every function's handler next to ``import boto3`` alone.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_coldstart.py
    .venv/bin/python benchmarks/bench_coldstart.py --runs 5
    .venv/bin/python benchmarks/bench_coldstart.py --python /path/to/python3.13  # with the layer's packages

Each import runs in a fresh interpreter (what a new Lambda container pays
before its first request, minus the runtime's own start), the modules
alternated so that load on the machine hits them alike, from each of
several stack depths (``DEPTHS``, and why), ``--runs`` times at each. Two
clocks: wall time (what a request waits on a quiet machine) and the
process's CPU time (the same work, far less disturbed when other jobs share
the cores). The goals are judged on the CPU *weight* of the import: at each
depth the median over runs, then the lowest over depths, the import without
CPython's frame-stack pathology (below); the median over depths (what an
unknown depth costs, pathology included) is printed next to it. The goals
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
# every module is imported from each depth.
DEPTHS = (0, 4, 8, 12, 16, 20, 24, 28)


def import_ms(module: str, python: str = sys.executable, depth: int = 0) -> tuple[float, float]:
    """(wall, CPU) milliseconds of ``import module`` in a fresh interpreter, ``depth`` frames deep."""
    code = PROBE.format(layers=str(ROOT / "layers"), root=str(ROOT), module=module, depth=depth)
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, env=ENV)
    wall, cpu = out.stdout.split()
    return float(wall) * 1000, float(cpu) * 1000


def measure(runs: int, python: str = sys.executable) -> dict[str, dict[str, float]]:
    """Per module: ``weight`` (CPU, the lowest over depths of the median over runs: the import
    itself, without the frame-stack pathology), ``expected`` (CPU, the median over depths: what an
    unknown depth costs) and ``wall`` (the median over depths of the wall-time medians)."""
    modules = {"boto3": "boto3", **{fn: f"lambdas.{fn}.handler" for fn in FUNCTIONS}}
    for module in modules.values():  # one unmeasured round: byte-compiled files in place
        import_ms(module, python)
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(runs):
        for depth in DEPTHS:
            for name, module in modules.items():
                times.setdefault((name, depth), []).append(import_ms(module, python, depth))
    out: dict[str, dict[str, float]] = {}
    for name in modules:
        cpu = [statistics.median(c for _, c in times[name, depth]) for depth in DEPTHS]
        wall = [statistics.median(w for w, _ in times[name, depth]) for depth in DEPTHS]
        out[name] = {"weight": min(cpu), "expected": statistics.median(cpu), "wall": statistics.median(wall)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs per depth")
    parser.add_argument("--python", default=sys.executable,
                        help="the interpreter of the imports (one with the layer's packages installed)")
    args = parser.parse_args()
    result = measure(args.runs, args.python)
    base = result["boto3"]
    print(f"== cold import, fresh interpreters, {len(DEPTHS)} depths x {args.runs} runs, CPU ms: weight "
          "(lowest over depths) and expected (median over depths), over boto3; wall ms (median)")
    print(f"   {'import boto3':32} {base['weight']:7.1f} {base['expected']:7.1f} {base['wall']:7.1f}")
    for fn in FUNCTIONS:
        r = result[fn]
        over, expected = r["weight"] - base["weight"], r["expected"] - base["expected"]
        goal = GOALS_MS.get(fn)
        verdict = "" if goal is None else f"  goal +{goal:.0f}: {'met' if over <= goal else 'MISSED'}"
        print(f"   {'lambdas.' + fn + '.handler':32} {r['weight']:7.1f} ({over:+6.1f}) {r['expected']:7.1f} "
              f"({expected:+6.1f}) {r['wall']:7.1f}{verdict}")
    print(json.dumps({"cold_import_ms": {name: {k: round(v, 1) for k, v in r.items()} for name, r in result.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
