"""API keys: an auth item keyed by the token's SHA-256 (one GetItem per
request) and a listing item under the user (list and revoke by id)."""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import (
    av,
    batch_get,
    from_item,
    get_one,
    key,
    or_not_found,
    query_items,
    table,
    to_item,
    unavailable_on_throttle,
)
from qrpro.domain import apikeys

LAST_USED_PRECISION = 60  # seconds: at most one last_used_at write per key per minute


def create_key(user_id: str, label: str | None, now: int) -> tuple[str, str]:
    """A new key for ``user_id``: returns ``(key_id, raw token)``; the token is not stored."""
    token = apikeys.new_token()
    digest = apikeys.token_hash(token)
    key_id = str(uuid.uuid4())
    common = {"key_id": key_id, "user_id": user_id, "label": label or "",
              "prefix": token[: apikeys.PREFIX_LEN], "created_at": now}
    ddb().transact_write_items(TransactItems=[
        {"ConditionCheck": {"TableName": table(), "Key": key(k.pk_user(user_id), k.PROFILE),
                            "ConditionExpression": "attribute_exists(pk)"}},
        {"Put": {"TableName": table(), "ConditionExpression": "attribute_not_exists(pk)",
                 "Item": to_item({"pk": k.pk_apikey(digest), "sk": "APIKEY", "type": "apikey", **common})}},
        {"Put": {"TableName": table(), "Item": to_item({
            "pk": k.pk_user(user_id), "sk": k.sk_key(key_id), "type": "key", "key_hash": digest, **common})}},
    ])
    return key_id, token


def lookup(token: str) -> dict[str, Any] | None:
    """The live key for a raw token, or None. One strongly consistent GetItem."""
    if not apikeys.well_formed(token):
        return None
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(k.pk_apikey(apikeys.token_hash(token)), "APIKEY"),
                             ConsistentRead=True)
    return from_item(out.get("Item"))


def touch(token_hash: str, item: dict[str, Any], now: int) -> None:
    """Refresh ``last_used_at``, skipping the write if it is under a minute old."""
    if now - int(item.get("last_used_at") or 0) < LAST_USED_PRECISION:
        return
    try:
        ddb().update_item(
            TableName=table(), Key=key(k.pk_apikey(token_hash), "APIKEY"),
            UpdateExpression="SET last_used_at = :now",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(last_used_at) "
                                "OR last_used_at < :stale)",
            ExpressionAttributeValues={":now": av(now), ":stale": av(now - LAST_USED_PRECISION)})
    except ClientError:
        # Another request refreshed it, or the key was just revoked, or the table
        # is busy: a bookkeeping write never fails the request.
        return


def list_keys(user_id: str) -> list[dict[str, Any]]:
    listed = list(query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)", "ConsistentRead": True,
        "ExpressionAttributeValues": {":pk": av(k.pk_user(user_id)), ":p": av("KEY#")}}))
    # last_used_at lives on the auth item (the one each request reads).
    got = batch_get([key(k.pk_apikey(i["key_hash"]), "APIKEY") for i in listed],
                    projection="key_id, last_used_at")
    last_used = {i["key_id"]: i.get("last_used_at") for i in got}
    keys = [{"id": i["key_id"], "label": i.get("label", ""), "prefix": i["prefix"],
             "created_at": i["created_at"], "last_used_at": last_used.get(i["key_id"])}
            for i in listed if i["key_id"] in last_used]
    return sorted(keys, key=lambda x: (x["created_at"], x["id"]), reverse=True)


def revoke(user_id: str, key_id: str) -> None:
    """Delete both items: the next request with the token finds no auth item."""
    item = or_not_found(get_one(k.pk_user(user_id), k.sk_key(key_id)))
    ddb().transact_write_items(TransactItems=[
        {"Delete": {"TableName": table(), "Key": key(k.pk_apikey(item["key_hash"]), "APIKEY")}},
        {"Delete": {"TableName": table(), "Key": key(k.pk_user(user_id), k.sk_key(key_id))}},
    ])
