"""A bounded load of mixed API calls and scans against a running local stack.

Used by tests/e2e/test_load.py (a small run in `make test`) and by
benchmarks/bench_load.py (a larger one, `make bench`). Traffic goes to the
stack's loopback ports only; the run stops after ``requests`` calls or
``seconds``, whichever comes first.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
]
COUNTRIES = ["US", "DE", "FR", "JP", "BR"]


@dataclass
class Result:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    scans: Counter[str] = field(default_factory=Counter)  # code id -> counted scans sent
    api_calls: Counter[str] = field(default_factory=Counter)  # api key -> requests sent
    created: Counter[str] = field(default_factory=Counter)  # api key -> codes created
    elapsed: float = 0.0

    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        total = sum(self.statuses.values())
        out: dict[str, Any] = {"requests": total, "seconds": round(self.elapsed, 2),
                               "throughput_rps": round(total / self.elapsed, 1) if self.elapsed else 0,
                               "server_errors": self.server_errors(), "ops": {}}
        for op, times in sorted(self.latencies.items()):
            q = statistics.quantiles(times, n=100) if len(times) > 1 else [times[0]] * 99
            out["ops"][op] = {"n": len(times), "p50_ms": round(statistics.median(times), 1),
                              "p99_ms": round(q[98], 1)}
        return out


class Client:
    """One keep-alive connection per host for one worker thread."""

    def __init__(self) -> None:
        self.conns: dict[str, http.client.HTTPConnection] = {}

    def call(self, method: str, url: str, headers: dict[str, str], body: Any = None) -> tuple[int, dict[str, str],
                                                                                               bytes]:
        parts = urlsplit(url)
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        for attempt in (1, 2):
            conn = self.conns.get(parts.netloc)
            if conn is None:
                conn = self.conns[parts.netloc] = http.client.HTTPConnection(parts.netloc, timeout=60)
            try:
                conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=data,
                             headers=headers)
                resp = conn.getresponse()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self.conns.pop(parts.netloc, None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def run(stack: Any, *, accounts: int = 4, codes_per_account: int = 5, workers: int = 8, requests: int = 600,
        seconds: float = 120, seed: int = 7) -> tuple[Result, list[dict[str, Any]]]:
    """Seed accounts and codes, then hammer the stack; returns the result and the seeded accounts."""
    seeded = []
    setup = Client()
    for _ in range(accounts):
        key = stack.account("team")["api_key"]
        code_list = []
        for i in range(codes_per_account):
            status, _, body = setup.call("POST", f"{stack.api_url}/api/codes", {"Authorization": f"Bearer {key}"},
                                         {"url": f"https://example.com/load/{i}"})
            assert status == 201, body
            code_list.append(json.loads(body))
        seeded.append({"key": key, "codes": code_list, "setup_calls": codes_per_account, "polls": 0})
    result = Result()
    lock = threading.Lock()
    budget = iter(range(requests))
    deadline = time.monotonic() + seconds
    rng = random.Random(seed)
    plans = [rng.random() for _ in range(requests)]

    def worker() -> None:
        client = Client()
        while time.monotonic() < deadline:
            with lock:
                n = next(budget, None)
            if n is None:
                return
            acct = seeded[n % len(seeded)]
            code = acct["codes"][n % len(acct["codes"])]
            roll = plans[n]
            auth = {"Authorization": f"Bearer {acct['key']}"}
            if roll < 0.6:
                op, method, url, headers, body = "scan", "GET", f"{stack.redirect_url}/{code['shortcode']}", {
                    "User-Agent": USER_AGENTS[n % len(USER_AGENTS)],
                    "CloudFront-Viewer-Country": COUNTRIES[n % len(COUNTRIES)]}, None
            elif roll < 0.8:
                op, method, url, headers = "get_code", "GET", f"{stack.api_url}/api/codes/{code['id']}", auth
                body = None
            elif roll < 0.9:
                op, method, url, headers, body = "patch_code", "PATCH", f"{stack.api_url}/api/codes/{code['id']}", \
                    auth, {"label": f"label {n}"}
            elif roll < 0.95:
                op, method, url, headers, body = "create_code", "POST", f"{stack.api_url}/api/codes", auth, \
                    {"url": f"https://example.com/new/{n}"}
            else:
                op, method, url, headers, body = "list_codes", "GET", f"{stack.api_url}/api/codes?limit=50", auth, None
            t0 = time.perf_counter()
            status, _, _ = client.call(method, url, headers, body)
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                result.statuses[(op, status)] += 1
                result.latencies[op].append(ms)
                if op == "scan" and status == 302:
                    result.scans[code["id"]] += 1
                if op != "scan":
                    result.api_calls[acct["key"]] += 1
                if op == "create_code" and status == 201:
                    result.created[acct["key"]] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.elapsed = time.perf_counter() - started
    return result, seeded


def wait_for_scans(stack: Any, seeded: list[dict[str, Any]], result: Result, timeout: float = 60) -> dict[str, int]:
    """Each code's analytics total, once they all match the scans sent (or the timeout passes)."""
    client = Client()
    deadline = time.monotonic() + timeout
    totals: dict[str, int] = {}
    while True:
        for acct in seeded:
            for code in acct["codes"]:
                status, _, body = client.call("GET", f"{stack.api_url}/api/codes/{code['id']}/analytics?range=7d",
                                              {"Authorization": f"Bearer {acct['key']}"})
                acct["polls"] += 1
                assert status == 200, body
                totals[code["id"]] = json.loads(body)["total"]
        if all(totals[cid] == result.scans.get(cid, 0) for cid in totals) or time.monotonic() > deadline:
            return totals
        time.sleep(1)
