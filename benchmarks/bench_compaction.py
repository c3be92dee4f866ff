"""The compaction at scale: a worker's measured throughput and memory, and how far
behind the aggregates are at 23:45 UTC, modelled from them.

Run from the repository root (``make bench`` runs every benchmark):

    .venv/bin/python benchmarks/bench_compaction.py                    # a 10 M-scan day for the memory
    .venv/bin/python benchmarks/bench_compaction.py --memory-day 1000000   # quicker

On DynamoDB Local, with the real fold (``qrpro.services.scans.fold``):

1. Folds of each kind the fan-out's jobs meet at 23:45 (a message of 50 days none of which is due; a quiet
   scope's fold of a few scans; a team at its cap, three minutes of scans over its 1,000 codes;
   one code at 2,000 scans/s, a minute of scans): wall seconds, and the worker's own CPU per
   scan (process time: DynamoDB Local's work is another process's).
2. Memory: a whole day of ``--memory-day`` scans on one code, folded from nothing by a child
   process (so a day the compaction never saw, the worst case); its peak resident memory.
3. The lag at 23:45 UTC at the template's worker concurrency, for 1,000, 10,000 and 100,000
   active scopes of the issue's mix (70 % at 100 scans a day, 20 % at 2,000, 9 % at 30,000, 1 %
   at a team's cap of 333,333) and for one code at 2,000 scans/s all day: each open day's job
   every minute, a fold when its oldest pane waited ``FOLD_AFTER`` (or at once past
   ``EAGER_PANES`` panes), the jobs' measured wall time spread over the workers. Lag: the age of
   the oldest unfolded pane when its fold ends (``FOLD_AFTER`` + a fan-out period + a fence's
   settling + waiting for a worker + the fold).

The last line is ``{"compaction": {"scans_per_cpu_second": x, "peak_mb_10m_day": y,
"lag_minutes": {"1000_scopes": a, "10000_scopes": b, "100000_scopes": c, "one_code_2000_per_s": d}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import bench_redirect as br  # sets sys.path and the local AWS environment

ROOT = Path(__file__).resolve().parents[1]
DAY_S, MINUTE = 86_400, 60
MIX = ((0.70, 100, 100), (0.20, 2_000, 100), (0.09, 30_000, 100), (0.01, 333_333, 1_000))  # share, scans/day, codes
FANOUT_PERIOD = 60


def write_day(scope: str, day: str, codes: list[str], scans: int, per_pane: int, window_panes: int,
              plan: str = "team") -> int:
    """``scans`` of ``day`` as panes of ``per_pane`` scans, as the aggregator writes them (their
    windows: ``window_panes`` back, a few minutes of a busy day); returns the sequence counter after."""
    from qrpro.data import keys as k
    from qrpro.data import panes
    from qrpro.data.aws import ddb
    from qrpro.data.table import av, table
    from qrpro.domain import scan_codec as codec
    from qrpro.domain.scan_codec import Scan

    first = panes.take(-(-scans // per_pane))
    items = []
    for n, start in enumerate(range(0, scans, per_pane)):
        group = [Scan(id=uuid.uuid4().hex, code_id=codes[i % len(codes)], scope=scope, plan=plan,
                      hour=f"{day}-{(i * 24 // max(1, scans)):02d}", country=("US", "DE", "FR", "BR")[i % 4],
                      device=("mobile", "desktop", "tablet")[i % 3], target="default", codes=len(codes))
                 for i in range(start, min(scans, start + per_pane))]
        attrs = codec.pane_attributes(group, max(0, first + n - window_panes), True)
        items.append({"PutRequest": {"Item": {"pk": av(k.pk_pane(scope, day)), "sk": av(codec.pane_sk(first + n)),
                                              **{name: av(v) for name, v in attrs.items()}}}})
    for i in range(0, len(items), 25):
        out = ddb().batch_write_item(RequestItems={table(): items[i:i + 25]})
        while out.get("UnprocessedItems"):
            out = ddb().batch_write_item(RequestItems=out["UnprocessedItems"])
    panes.mark_open(scope, day, int(time.time()))
    return first + len(items)


def timed_fold(scope: str, day: str, fence: int, eager: bool = True) -> dict[str, float]:
    from qrpro.domain.scan_codec import Job
    from qrpro.services import scans as scan_service

    cpu, wall = time.process_time(), time.perf_counter()
    done = scan_service.fold(Job(scope, day, fence), int(time.time()), eager=eager)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "scans": done.scans,
            "steps": done.steps}


def folds() -> dict[str, dict[str, float]]:
    """One measured fold of each kind (section 1)."""
    from qrpro.data import panes

    day = time.strftime("%Y-%m-%d", time.gmtime())
    out: dict[str, dict[str, float]] = {}
    kinds = {  # name: (codes, scans in the fold, scans per pane, window panes)
        "quiet scope, 1 scan": (100, 1, 1, 10),
        "2,000 a day, 3 minutes (4 scans)": (100, 4, 1, 10),
        "30,000 a day, 3 minutes (63 scans)": (100, 63, 2, 50),
        "team at its cap, 3 minutes (700 scans over 1,000 codes)": (1_000, 700, 8, 100),
        "one code at 2,000/s, a minute (120,000 scans)": (1, 120_000, 100, 2_400),
    }
    for name, (n_codes, scans, per_pane, window) in kinds.items():
        scope, codes = f"TEAM#{uuid.uuid4()}", [str(uuid.uuid4()) for _ in range(n_codes)]
        if name.startswith("one code"):  # the minutes before: what the window re-reads
            write_day(scope, day, codes, 3 * 120_000, per_pane, window)
            timed_fold(scope, day, panes.take(0))
        fence = write_day(scope, day, codes, scans, per_pane, window)
        out[name] = timed_fold(scope, day, fence)
    out["message of 50 days, nothing due"] = idle_message(day)
    return out


def idle_message(day: str) -> dict[str, float]:
    """A fold message of 50 open days none of which is due (each has a pane that waited less than
    FOLD_AFTER), through the compaction function's side-by-side check."""
    from lambdas.compaction import handler as compaction
    from qrpro.data import panes
    from qrpro.domain.scan_codec import Job

    jobs = []
    for _ in range(50):
        scope = f"USER#{uuid.uuid4()}"
        fence = write_day(scope, day, [str(uuid.uuid4())], 1, 1, 0)
        jobs.append(Job(scope, day, fence))
    fence = panes.take(0)
    jobs = [Job(j.scope, j.day, fence) for j in jobs]
    panes._fences.update(at=time.time(), list=[panes.Fence(int(time.time()), fence)])  # none waited yet
    cpu, wall = time.process_time(), time.perf_counter()
    compaction._fold(jobs, None)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "scans": 0, "steps": 0}


def peak_memory(day_scans: int) -> float:
    """A child process folds a day of ``day_scans`` scans on one code, from nothing: its peak MiB."""
    code = f"""
import sys, time, uuid, resource
sys.path[:0] = {[str(ROOT / 'benchmarks'), str(ROOT / 'layers'), str(ROOT)]!r}
import bench_compaction as bc
from qrpro.domain.scan_codec import Job
from qrpro.services import scans
day, scope = time.strftime("%Y-%m-%d", time.gmtime()), "TEAM#" + uuid.uuid4().hex
fence = bc.write_day(scope, day, [str(uuid.uuid4())], {day_scans}, 100, 2_400)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
done = scans.fold(Job(scope, day, fence), int(time.time()), eager=True)
print(done.scans, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    folded, before, peak = map(int, out.stdout.split()[-3:])
    assert folded == day_scans, out.stdout + out.stderr
    print(f"   the writer's own peak before the fold: {before / 1024:.0f} MiB")
    return peak / 1024


def lag(folded: dict[str, dict[str, float]], scopes: int, workers: int) -> float:
    """Minutes behind at 23:45 for ``scopes`` active scopes of the mix (section 3). A worker checks
    and folds a message's days ``SIDE_BY_SIDE`` at once."""
    from lambdas.compaction.handler import SIDE_BY_SIDE
    from qrpro.data import panes
    from qrpro.services import scans as scan_service

    idle = folded["message of 50 days, nothing due"]["wall_s"] / 50 * SIDE_BY_SIDE  # one day's check, alone
    per_fold = [folded["quiet scope, 1 scan"]["wall_s"], folded["2,000 a day, 3 minutes (4 scans)"]["wall_s"],
                folded["30,000 a day, 3 minutes (63 scans)"]["wall_s"],
                folded["team at its cap, 3 minutes (700 scans over 1,000 codes)"]["wall_s"]]
    work = 0.0  # worker seconds a minute
    for (share, per_day, _codes), fold_s in zip(MIX, per_fold, strict=True):
        per_min = per_day / (DAY_S / MINUTE)
        folds_per_min = min(per_min, MINUTE / (scan_service.FOLD_AFTER + FANOUT_PERIOD))
        work += share * scopes * (idle + folds_per_min * fold_s) / SIDE_BY_SIDE
    busy = work / (workers * MINUTE)
    if busy >= 1:
        return float("inf")
    wait = busy / (1 - busy) * max(per_fold) / workers  # a worker frees up (M/M/c, roughly)
    return (scan_service.FOLD_AFTER + FANOUT_PERIOD + panes.SETTLE + wait + max(per_fold)) / MINUTE


def main() -> None:
    import logging

    from qrpro_cli.template import Template

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory-day", type=int, default=10_000_000, help="scans of the day folded for memory")
    args = parser.parse_args()
    t = Template.load()
    compaction = t.function_by_name("compaction")
    mapping = next(m for m in t.mappings() if m.function == compaction.logical_id)
    workers = int(mapping.props.get("ScalingConfig", {}).get("MaximumConcurrency", 1000))
    print(f"== template: compaction {compaction.memory} MB, {workers} workers at most")

    def work() -> dict[str, Any]:
        res: dict[str, Any] = {"folds": folds()}
        print(f"== memory: a day of {args.memory_day:,} scans on one code, folded from nothing")
        res["peak"] = peak_memory(args.memory_day)
        return res

    res = br.with_engines(work)
    print("== folds (DynamoDB Local)                                     wall s    cpu s   scans  steps  µs cpu/scan")
    for name, f in res["folds"].items():
        per = f["cpu_s"] / f["scans"] * 1e6 if f["scans"] else 0
        print(f"   {name:60} {f['wall_s']:7.3f}  {f['cpu_s']:7.3f}  {f['scans']:6.0f}  {f['steps']:5.0f}  {per:10.1f}")
    big = res["folds"]["one code at 2,000/s, a minute (120,000 scans)"]
    scans_per_cpu_second = big["scans"] / big["cpu_s"]
    print(f"   peak resident memory of the {args.memory_day:,}-scan day's fold: {res['peak']:.0f} MiB")
    viral = big["wall_s"]  # a minute of 2,000 scans/s, folded every minute (EAGER_PANES)
    from qrpro.data import panes

    lags = {f"{n}_scopes": round(lag(res["folds"], n, workers), 2) for n in (1_000, 10_000, 100_000)}
    lags["one_code_2000_per_s"] = round((FANOUT_PERIOD + panes.SETTLE + viral) / MINUTE, 2) \
        if viral < MINUTE else float("inf")
    print("== lag at 23:45 UTC (minutes; model above): " + ", ".join(f"{k} {v}" for k, v in lags.items()))
    print(json.dumps({"compaction": {"scans_per_cpu_second": round(scans_per_cpu_second),
                                     "peak_mb_10m_day": round(res["peak"]), "lag_minutes": lags}}))


if __name__ == "__main__":
    main()
