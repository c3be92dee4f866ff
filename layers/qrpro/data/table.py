"""Thin helpers over the low-level DynamoDB client: (de)serialisation and
translation of throttling into a domain error."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from qrpro.config import settings
from qrpro.data.aws import ddb
from qrpro.domain.errors import NotFound, ServiceUnavailable

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


def found(item: dict[str, Any] | None) -> dict[str, Any]:
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
    """BatchGetItem for any number of keys: 100 at a time, unprocessed keys retried with backoff."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        spec: dict[str, Any] = {"Keys": keys[start:start + 100], "ConsistentRead": consistent}
        if projection:
            spec["ProjectionExpression"] = projection
        request: dict[str, Any] = {table(): spec}
        for attempt in range(10):
            with unavailable_on_throttle():
                out = ddb().batch_get_item(RequestItems=request)
            items += [from_item(raw) or {} for raw in out["Responses"].get(table(), [])]
            request = out.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.01 * 2**attempt)
        else:
            raise ServiceUnavailable("the database is busy; retry shortly")
    return items
