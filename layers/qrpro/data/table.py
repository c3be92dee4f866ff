"""Thin helpers over the low-level DynamoDB client: (de)serialisation,
translation of throttling into a domain error, named transactions and the one
retry helper.

Retries: botocore retries throttling and transport errors itself (``standard``
mode, configured once in ``qrpro.data.aws``); what it still cannot absorb is a
``503 unavailable``. ``retrying`` is the only other loop: it re-runs an attempt
that lost a race (a transaction conflict, a version that moved on, a taken
shortcode) and turns exhaustion into ``503`` too.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data.aws import ddb
from qrpro.domain.errors import NotFound, ServiceUnavailable

T = TypeVar("T")
_ser = TypeSerializer()
_de = TypeDeserializer()

THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


def table() -> str:
    return settings().table_name


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict to DynamoDB attribute values (None values are dropped)."""
    return {k: _ser.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not item:
        return None
    return {k: _plain(_de.deserialize(v)) for k, v in item.items()}


def av(value: Any) -> dict[str, Any]:
    """One attribute value, for expression values and keys."""
    out: dict[str, Any] = dict(_ser.serialize(value))
    return out


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def cancel_reasons(err: ClientError) -> list[str]:
    """Per-item reasons of a cancelled transaction (``None`` where the item was fine)."""
    return [str(r.get("Code", "None")) for r in err.response.get("CancellationReasons", [])]


class Retry(Exception):
    """Raised by an attempt given to ``retrying``: it lost a race, run it again."""


def retrying(attempt: Callable[[], T], *, attempts: int = 8, busy: str = "the database is busy; retry shortly") -> T:
    """``attempt()`` until it returns without raising ``Retry``, with jittered
    backoff between runs; ``503 unavailable`` (saying ``busy``) once ``attempts`` are spent."""
    for n in range(attempts):
        try:
            return attempt()
        except Retry:
            if n < attempts - 1:
                time.sleep(random.uniform(0, 0.01 * 2 ** min(n, 5)))
    raise ServiceUnavailable(busy)


class Cancelled(Exception):
    """A transaction whose named conditions failed (``failed``: their names)."""

    def __init__(self, failed: frozenset[str], reasons: dict[str, str]) -> None:
        super().__init__(", ".join(f"{name}: {reason}" for name, reason in reasons.items()))
        self.failed, self.reasons = failed, reasons


# Per-item reasons that mean "another writer or the service was busy": the transaction is simply run again.
_TRANSIENT = frozenset({"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


class Transaction:
    """TransactWriteItems with a name for every item, so that a cancellation
    says which condition failed (``Cancelled.failed``), whatever the order."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, name: str, item: dict[str, Any]) -> Transaction:
        if name in self.items:
            raise ValueError(f"two transaction items named {name!r}")
        self.items[name] = item
        return self

    def run(self) -> None:
        """Write every item or none. Conflicts and throttling are retried
        (``retrying``); failed conditions raise ``Cancelled`` at once."""
        retrying(self.attempt, attempts=12)

    def attempt(self) -> None:
        """One try: ``Retry`` on a conflict or throttled item, ``Cancelled`` on a failed condition."""
        names = list(self.items)
        try:
            with unavailable_on_throttle():
                ddb().transact_write_items(TransactItems=list(self.items.values()))
        except ClientError as err:
            if error_code(err) != "TransactionCanceledException":
                raise
            reasons = dict(zip(names, cancel_reasons(err), strict=False))
            if set(reasons.values()) <= _TRANSIENT:
                raise Retry() from err
            failed = frozenset(n for n, reason in reasons.items() if reason == "ConditionalCheckFailed")
            raise Cancelled(failed, {n: r for n, r in reasons.items() if r != "None"}) from err


@contextmanager
def unavailable_on_throttle() -> Iterator[None]:
    """Turn throttling and transport errors into ``503 unavailable``."""
    try:
        yield
    except ClientError as err:
        if error_code(err) in THROTTLING:
            raise ServiceUnavailable("the database is busy; retry shortly") from err
        raise
    except BotoCoreError as err:
        raise ServiceUnavailable("the database did not answer; retry shortly") from err


def get_one(pk: str, sk: str) -> dict[str, Any] | None:
    """One item by its key (strongly consistent), or None."""
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(pk, sk), ConsistentRead=True)
    return from_item(out.get("Item"))


def update_if(**params: Any) -> dict[str, Any] | None:
    """UpdateItem on the table with a ``ConditionExpression``: the attributes it
    returns (``{}`` without ``ReturnValues``), or None when the condition failed."""
    try:
        with unavailable_on_throttle():
            out = ddb().update_item(TableName=table(), **params)
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise
        return None
    return from_item(out.get("Attributes")) or {}


def or_not_found(item: T | None) -> T:
    """The item, or ``404 not_found``: an id of another scope is simply not here."""
    if item is None:
        raise NotFound()
    return item


def query_items(params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item a Query returns, page after page (throttling: 503)."""
    request = dict(params)
    while True:
        with unavailable_on_throttle():
            out = ddb().query(**request)
        for raw in out.get("Items", []):
            yield from_item(raw) or {}
        if "LastEvaluatedKey" not in out:
            return
        request["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def batch_get(keys: list[dict[str, Any]], *, consistent: bool = False,
              projection: str | None = None) -> list[dict[str, Any]]:
    """BatchGetItem for any number of keys: 100 at a time, unprocessed keys asked again (``retrying``)."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        spec: dict[str, Any] = {"Keys": keys[start:start + 100], "ConsistentRead": consistent}
        if projection:
            spec["ProjectionExpression"] = projection
        request: dict[str, Any] = {table(): spec}

        def attempt() -> None:
            nonlocal request
            with unavailable_on_throttle():
                out = ddb().batch_get_item(RequestItems=request)
            items.extend(from_item(raw) or {} for raw in out["Responses"].get(table(), []))
            request = out.get("UnprocessedKeys") or {}
            if request:
                raise Retry()

        retrying(attempt, attempts=10)
    return items
