"""A bounded mixed load on the local stack (the larger run is `make bench`):
no 5xx, and every counter exact afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e import load
from tests.e2e.conftest import Stack, running_stack


@pytest.fixture(scope="module")
def load_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("load"), "--in-memory", "--workers", "3") as s:
        yield s


def test_mixed_load_has_no_server_errors_and_exact_counters(load_stack: Stack) -> None:
    result, seeded = load.run(load_stack, accounts=3, codes_per_account=4, workers=6, requests=400, seconds=180)
    assert result.server_errors() == 0, result.statuses
    assert sum(result.statuses.values()) == 400
    # Scans: every redirect answered 302 shows up exactly once in analytics.
    totals = load.wait_for_scans(load_stack, seeded, result)
    assert totals == {cid: result.scans.get(cid, 0) for cid in totals}
    # Rate limits: every call was counted exactly once (seed calls, load calls, the analytics polls).
    for acct in seeded:
        r = load_stack.api("GET", "/api/user/usage", acct["key"])
        used = r.json()["requests_today"]["used"]
        assert used == acct["setup_calls"] + result.api_calls[acct["key"]] + acct["polls"] + 1
        assert int(r.headers["X-RateLimit-Remaining"]) == 10_000 - used
    # Codes: the list holds exactly the seeded and the created ones.
    for acct in seeded:
        r = load_stack.api("GET", "/api/codes", acct["key"])
        assert len(r.json()["codes"]) == len(acct["codes"]) + result.created[acct["key"]]
