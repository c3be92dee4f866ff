"""The API keys repository (docs/data-model.md): two items per key, the token
itself never stored.

- auth item ``APIKEY#{sha256(token)}`` / ``APIKEY``: what the authorizer reads
  (one GetItem per request), with ``last_used_at`` and the key's own API
  Gateway key ``usage_key`` (written by ``qrpro.data.usage_keys``);
- listing item ``USER#{uid}`` / ``KEY#{key_id}``: list and revoke by id, its
  ``key_hash`` pointing at the auth item.

The rules (token format, when ``last_used_at`` is refreshed, the order of the
list, who may revoke) are ``qrpro.services.keys``'.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import (
    Transaction,
    av,
    batch_get,
    from_item,
    get_one,
    key,
    query_items,
    table,
    to_item,
    unavailable_on_throttle,
)

AUTH_SK = "APIKEY"


@dataclass(frozen=True)
class ApiKey:
    """One key of a user (``key_hash``: the SHA-256 of its token)."""

    id: str
    user_id: str
    key_hash: str
    prefix: str
    created_at: int
    label: str = ""
    last_used_at: int | None = None
    usage_key: str | None = None  # its own API Gateway key, once ``usage_keys`` made one

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ApiKey:
        """From either item: the listing item names the hash, the auth item is keyed by it."""
        digest = item.get("key_hash") or str(item["pk"]).removeprefix(k.pk_apikey(""))
        return cls(id=item["key_id"], user_id=item["user_id"], key_hash=digest, prefix=item.get("prefix", ""),
                   created_at=int(item.get("created_at", 0)), label=item.get("label", ""),
                   last_used_at=item.get("last_used_at"), usage_key=item.get("usage_key") or None)

    def public(self) -> dict[str, Any]:
        """The key object of docs/api.md (never the token nor its hash)."""
        return {"id": self.id, "label": self.label, "prefix": self.prefix, "created_at": self.created_at,
                "last_used_at": self.last_used_at}


def _auth_key(token_hash: str) -> dict[str, Any]:
    return key(k.pk_apikey(token_hash), AUTH_SK)


def create_tx(api_key: ApiKey) -> Transaction:
    """Both items, on the condition that the user exists (item ``user``) and the
    hash is new (item ``auth``)."""
    common = {"key_id": api_key.id, "user_id": api_key.user_id, "label": api_key.label,
              "prefix": api_key.prefix, "created_at": api_key.created_at}
    return (Transaction()
            .add("user", {"ConditionCheck": {"TableName": table(), "Key": key(k.pk_user(api_key.user_id), k.PROFILE),
                                             "ConditionExpression": "attribute_exists(pk)"}})
            .add("auth", {"Put": {"TableName": table(), "ConditionExpression": "attribute_not_exists(pk)",
                                  "Item": to_item({"pk": k.pk_apikey(api_key.key_hash), "sk": AUTH_SK,
                                                   "type": "apikey", **common})}})
            .add("listing", {"Put": {"TableName": table(), "Item": to_item({
                "pk": k.pk_user(api_key.user_id), "sk": k.sk_key(api_key.id), "type": "key",
                "key_hash": api_key.key_hash, **common})}}))


def by_hash(token_hash: str) -> ApiKey | None:
    """The live key whose token hashes to ``token_hash``: one strongly consistent GetItem."""
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=_auth_key(token_hash), ConsistentRead=True)
    item = from_item(out.get("Item"))
    return None if item is None else ApiKey.from_item(item)


def set_last_used(token_hash: str, now: int, older_than: int) -> bool:
    """``last_used_at = now`` if the key still exists and its ``last_used_at`` is
    missing or before ``older_than``. Best effort: False when not written, because
    another request refreshed it, the key was just revoked, or the table is busy."""
    try:
        ddb().update_item(
            TableName=table(), Key=_auth_key(token_hash), UpdateExpression="SET last_used_at = :now",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(last_used_at) "
                                "OR last_used_at < :stale)",
            ExpressionAttributeValues={":now": av(now), ":stale": av(older_than)})
    except ClientError:
        return False
    return True


def list_for(user_id: str) -> list[ApiKey]:
    """The user's live keys (a listing item whose auth item is gone is left out),
    with ``last_used_at`` from the auth item (the one each request reads)."""
    listed = [ApiKey.from_item(i) for i in query_items({
        "TableName": table(), "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)", "ConsistentRead": True,
        "ExpressionAttributeValues": {":pk": av(k.pk_user(user_id)), ":p": av("KEY#")}})]
    got = batch_get([_auth_key(i.key_hash) for i in listed], projection="key_id, last_used_at")
    last_used = {i["key_id"]: i.get("last_used_at") for i in got}
    return [replace(i, last_used_at=last_used[i.id]) for i in listed if i.id in last_used]


def get(user_id: str, key_id: str) -> ApiKey | None:
    """One of the user's keys by id (its listing item), or None."""
    item = get_one(k.pk_user(user_id), k.sk_key(key_id))
    return None if item is None else ApiKey.from_item(item)


def delete(api_key: ApiKey) -> None:
    """Delete both items: the next request with the token finds no auth item."""
    ddb().transact_write_items(TransactItems=[
        {"Delete": {"TableName": table(), "Key": _auth_key(api_key.key_hash)}},
        {"Delete": {"TableName": table(), "Key": key(k.pk_user(api_key.user_id), k.sk_key(api_key.id))}},
    ])
