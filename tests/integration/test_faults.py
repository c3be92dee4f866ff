"""Injected faults on the API path: throttling and timeouts answer 503 with
the envelope and leave nothing half-written; shortcode collisions retry."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from qrpro.data import aws
from qrpro.data import codes as code_repo
from qrpro.domain import codes as domain_codes
from qrpro.services import codes


class FaultyClient:
    """Wraps the real client; the named operations fail ``times`` times."""

    def __init__(self, real: Any, failures: dict[str, Exception], times: int = 10**6) -> None:
        self.real, self.failures, self.left = real, failures, times

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name in self.failures and self.left > 0:
            def fail(*_: Any, **__: Any) -> Any:
                self.left -= 1
                raise self.failures[name]
            return fail
        return attr


def throttled(op: str) -> ClientError:
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, op)


@pytest.mark.parametrize("fault", [throttled("TransactWriteItems"),
                                   ReadTimeoutError(endpoint_url="http://127.0.0.1")])
def test_throttled_create_is_503_and_writes_nothing(api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch,
                                                    fault: Exception) -> None:
    acct = make_account()
    real = aws.ddb()
    with monkeypatch.context() as m:
        m.setattr(aws, "client", lambda service: FaultyClient(real, {"transact_write_items": fault}))
        r = api.request("POST", "/api/codes", acct.token, json={"url": "https://example.com"})
    assert (r.status, r.json()["error"]) == (503, "unavailable")
    assert r.headers["Retry-After"] == "1"
    assert list(code_repo.all_items(acct.caller().scope)) == []
    assert code_repo.codes_used(acct.caller().scope) == 0


def test_throttled_caller_lookup_is_503(api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account()
    real = aws.ddb()
    with monkeypatch.context() as m:
        m.setattr(aws, "client", lambda service: FaultyClient(real, {"update_item": throttled("UpdateItem")}))
        r = api.request("GET", "/api/user", acct.token)
    assert (r.status, r.json()["error"]) == (503, "unavailable")


def test_shortcode_collisions_draw_again(make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = make_account().caller()
    now = int(time.time())
    first = codes.create(caller, {"url": "https://example.com/1"}, now)
    draws = iter([first["shortcode"], first["shortcode"], "Zx9Zx9Z"])
    monkeypatch.setattr(codes, "new_shortcode", lambda: next(draws))
    second = codes.create(caller, {"url": "https://example.com/2"}, now)
    assert second["shortcode"] == "Zx9Zx9Z"
    assert code_repo.codes_used(caller.scope) == 2
    assert len({c["shortcode"] for c in (first, second)}) == 2


def test_shortcodes_come_from_a_cryptographic_source() -> None:
    drawn = {domain_codes.new_shortcode() for _ in range(2000)}
    assert len(drawn) == 2000
    assert all(domain_codes.SHORTCODE_RE.match(s) for s in drawn)


class SelectiveFault:
    """Wraps the real client; ``op`` is throttled for the calls ``when`` picks (by their parameters)."""

    def __init__(self, real: Any, op: str, when: Any) -> None:
        self.real, self.op, self.when = real, op, when

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if name != self.op:
            return attr

        def call(**params: Any) -> Any:
            if self.when(params):
                raise throttled(name)
            return attr(**params)
        return call


def _group_check(params: dict[str, Any]) -> bool:
    return params["Key"]["sk"]["S"].startswith("GROUP#")


GROUP_ID = "0b7e2c1e-4b5f-4c55-9a0e-2f7d8f1c0d11"


@pytest.mark.parametrize(("path", "body"), [
    ("/api/codes/bulk", {"ids": [GROUP_ID], "action": "move", "group_id": GROUP_ID}),
    ("/api/codes/import", [{"url": "https://example.com", "group_id": GROUP_ID}]),
])
def test_throttled_group_check_is_503(api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch, path: str,
                                      body: Any) -> None:
    acct = make_account()
    real = aws.ddb()
    with monkeypatch.context() as m:
        m.setattr(aws, "client", lambda service: SelectiveFault(real, "get_item", _group_check))
        r = api.request("POST", path, acct.token, json=body)
    assert (r.status, r.json()["error"], r.headers["Retry-After"]) == (503, "unavailable", "1")
    assert list(code_repo.all_items(acct.caller().scope)) == []


def test_throttled_daily_usage_is_503(api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account()
    real = aws.ddb()
    with monkeypatch.context() as m:
        m.setattr(aws, "client", lambda service: SelectiveFault(
            real, "get_item", lambda params: params["Key"]["pk"]["S"].startswith("RATE#")))
        r = api.request("GET", "/api/user/usage", acct.token)
    assert (r.status, r.json()["error"]) == (503, "unavailable")


def test_endless_transaction_conflicts_are_503(api: Any, make_account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    acct = make_account()
    real = aws.ddb()
    conflict = ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},  # type: ignore[typeddict-unknown-key]
                            "CancellationReasons": [{"Code": "TransactionConflict"}]}, "TransactWriteItems")
    with monkeypatch.context() as m:
        m.setattr(aws, "client", lambda service: FaultyClient(real, {"transact_write_items": conflict}))
        r = api.request("POST", "/api/codes", acct.token, json={"url": "https://example.com"})
    assert (r.status, r.json()["error"]) == (503, "unavailable")
    assert list(code_repo.all_items(acct.caller().scope)) == []
    assert code_repo.codes_used(acct.caller().scope) == 0
