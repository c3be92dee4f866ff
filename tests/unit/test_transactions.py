"""Named transaction outcomes: a cancellation says which named condition
failed, so the order of the items never decides which error a client gets;
conflicts are retried and an exhausted retry is 503 (no DynamoDB needed: a
fake client answers as DynamoDB does, reasons in the order of the items)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from qrpro.data import aws
from qrpro.data import table as table_module
from qrpro.data.table import Cancelled, Transaction
from qrpro.domain.errors import PlanLimitReached, ServiceUnavailable, ValidationFailed
from qrpro.domain.scope import Caller
from qrpro.services import codes

GROUP_ID = "0b7e2c1e-4b5f-4c55-9a0e-2f7d8f1c0d11"
CALLER = Caller(user_id="u1", key_id="k1", email="a@example.com", scope="USER#u1", plan_name="solo",
                plan_status="active")


def _sk(item: dict[str, Any]) -> str:
    body = next(iter(item.values()))
    return str((body.get("Key") or body.get("Item"))["sk"]["S"])


class FakeDynamoDB:
    """Cancels every transaction whose items include one that ``fails`` picks
    (``ConditionalCheckFailed`` for it, ``None`` for the others), or answers
    ``TransactionConflict`` for the first ``conflicts`` calls."""

    def __init__(self, fails: Callable[[dict[str, Any]], bool] = lambda _: False, conflicts: int = 0) -> None:
        self.fails, self.conflicts, self.calls = fails, conflicts, 0

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.conflicts:
            reasons = [{"Code": "TransactionConflict"} for _ in TransactItems]
        elif any(self.fails(item) for item in TransactItems):
            reasons = [{"Code": "ConditionalCheckFailed" if self.fails(item) else "None"} for item in TransactItems]
        else:
            return {}
        raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                           "CancellationReasons": reasons}, "TransactWriteItems")  # type: ignore[typeddict-unknown-key]

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": {"codes_used": {"N": "10"}}}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeDynamoDB]:
    def install(**kwargs: Any) -> FakeDynamoDB:
        client = FakeDynamoDB(**kwargs)
        monkeypatch.setattr(aws, "client", lambda service: client)
        return client

    monkeypatch.setattr(table_module.time, "sleep", lambda _: None)
    return install


@pytest.fixture(params=["as built", "reversed", "shuffled"])
def order(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every transaction's items in another order than they were built in."""
    if request.param == "as built":
        return
    run = Transaction.attempt

    def reordered(self: Transaction) -> None:
        names = list(self.items)
        if request.param == "reversed":
            names.reverse()
        else:
            random.Random(7).shuffle(names)
        self.items = {name: self.items[name] for name in names}
        run(self)

    monkeypatch.setattr(Transaction, "attempt", reordered)


def test_a_cancellation_names_the_failed_item_whatever_the_order(fake: Any) -> None:
    fake(fails=lambda item: _sk(item) == "B")
    items = {name: {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": name}}}} for name in "ABCD"}
    for names in ("ABCD", "DCBA", "BDAC"):
        tx = Transaction()
        for name in names:
            tx.add(f"item {name}", items[name])
        with pytest.raises(Cancelled) as cancel:
            tx.run()
        assert cancel.value.failed == {"item B"}


def test_item_names_are_unique() -> None:
    tx = Transaction().add("code", {})
    with pytest.raises(ValueError, match="code"):
        tx.add("code", {})


def test_a_full_plan_is_plan_limit_in_any_order(fake: Any, order: None) -> None:
    fake(fails=lambda item: _sk(item) == "PROFILE")  # the cap condition
    with pytest.raises(PlanLimitReached) as err:
        codes.create(CALLER, {"url": "https://example.com"}, 1_700_000_000)
    assert err.value.extra == {"plan": "solo", "limit": CALLER.plan.codes, "current": 10}


def test_a_missing_group_is_a_group_id_error_in_any_order(fake: Any, order: None) -> None:
    fake(fails=lambda item: _sk(item) == f"GROUP#{GROUP_ID}")
    with pytest.raises(ValidationFailed) as err:
        codes.create(CALLER, {"url": "https://example.com", "group_id": GROUP_ID}, 1_700_000_000)
    assert err.value.extra["field"] == "group_id"


def test_a_taken_shortcode_draws_again_in_any_order(fake: Any, order: None) -> None:
    taken: set[str] = set()

    def shortcode_taken_once(item: dict[str, Any]) -> bool:
        body = item.get("Put", {}).get("Item", {})
        if body.get("sk", {}).get("S") != "SHORT":
            return False
        first = not taken
        taken.add(body["pk"]["S"])
        return first

    client = fake(fails=shortcode_taken_once)
    created = codes.create(CALLER, {"url": "https://example.com"}, 1_700_000_000)
    assert client.calls == 2 and created["status"] == "active"


def test_conflicts_are_retried(fake: Any) -> None:
    client = fake(conflicts=3)
    codes.create(CALLER, {"url": "https://example.com"}, 1_700_000_000)
    assert client.calls == 4


def test_endless_conflicts_are_503(fake: Any) -> None:
    fake(conflicts=10**6)
    with pytest.raises(ServiceUnavailable):
        codes.create(CALLER, {"url": "https://example.com"}, 1_700_000_000)
