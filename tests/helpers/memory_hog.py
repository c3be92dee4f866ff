"""A function for the local runtime's memory test: it holds ``mb`` MiB, growing 10 MiB at a
time as a fold that pages through a day would, then answers how much it held."""

from __future__ import annotations

import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> int:
    held = []
    for _ in range(int(event["mb"]) // 10):
        held.append(b"x" * (10 * 2**20))
        time.sleep(0.01)
    time.sleep(0.2)
    return sum(len(chunk) for chunk in held) // 2**20
