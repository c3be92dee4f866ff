"""Run each case of a benchmark in a fresh interpreter, so that its peak RSS
belongs to that case alone (stdlib only: importing this costs the case nothing)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any


def cases(doc: str, script: str, count: int,
          run_case: Callable[[int, int], dict[str, Any]]) -> tuple[int, Iterator[dict[str, Any]]]:
    """``(repeat, results)``: with ``--case i`` (the child) runs case i here, prints it and exits;
    otherwise each result comes from ``script --case i`` in a fresh interpreter."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.repeat)))
        raise SystemExit(0)

    def results() -> Iterator[dict[str, Any]]:
        for i in range(count):
            out = subprocess.run([sys.executable, script, "--case", str(i), "--repeat", str(args.repeat)],
                                 check=True, capture_output=True, text=True)
            yield json.loads(out.stdout)

    return args.repeat, results()
