"""Restart the local stack in the middle of a load: every write the API
acknowledged is there afterwards (`--data-dir`)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import running_stack, start_stack, stop_stack_process
from tests.e2e.load import Client


def test_acknowledged_writes_survive_a_restart_mid_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    stack = start_stack(data)
    key = stack.account("business")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    acknowledged: list[dict[str, Any]] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        client = Client()
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, _, body = client.call("POST", f"{stack.api_url}/api/codes", auth,
                                              {"url": f"https://example.com/{n}/{i}", "label": f"w{n}-{i}"})
            except OSError:
                return  # the stack went away mid-request: not acknowledged
            if status == 201:
                acknowledged.append(json.loads(body))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop_stack_process(stack.proc)  # SIGTERM while writers are still sending
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 20

    with running_stack(data) as again:
        listed = again.api("GET", "/api/codes", key).json()["codes"]
        stored = {c["id"]: c for c in listed}
        for code in acknowledged:
            assert stored[code["id"]]["url"] == code["url"] and stored[code["id"]]["label"] == code["label"]
        # The plan counter agrees with the codes that exist (nothing half-written).
        usage = again.api("GET", "/api/user/usage", key).json()
        assert usage["codes"]["used"] == len(listed)
