"""API Gateway usage-plan keys: the edge backstop to the exact daily budget.

Each customer key gets its own API Gateway API key (named
``qrpro/{table}/{key_id}``, so stacks sharing an account and region never
touch each other's keys; the user id in its description), attached to the usage plan of the highest
tier the key's user can act in: the personal plan or any team's plan. The
budget applies per key in whatever context the key is used, so the edge must
allow the largest of them; it never rejects a request the exact counter
(``qrpro.data.ratelimit``) would allow. The key's value is stored on the
auth item as ``usage_key`` (the authorizer returns it as
``usageIdentifierKey``), with ``usage_key_id`` and ``usage_plan``.

Keys without one (just created, sync pending or failed, past the account's
10,000 API keys) ride on the stack's fallback key (the authorizer returns it).
The ``usagekeys`` stream consumer (``lambdas/usagekeys``) calls this on every
key creation and revocation, plan change and team membership change;
``qrpro admin sync-usage-keys --stack NAME`` is the repair tool. See
docs/deploy.md, "API keys and usage plans".
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import accounts, teams
from qrpro.data import keys as k
from qrpro.data.aws import client, ddb
from qrpro.data.table import av, error_code, get_one, key, query_items, table

TIERS = ("business", "team", "agency")  # ascending daily budgets; solo has no API access
# Past these a key stays on the fallback key: the account's 10,000 API keys (not raisable), and
# CreateApiKey's rate limit once botocore's retries are spent.
LIMIT_EXCEEDED, RATE_LIMITED = "limit_exceeded", "rate_limited"
_ON_FALLBACK = {"LimitExceededException": LIMIT_EXCEEDED, "TooManyRequestsException": RATE_LIMITED}


def _apigw() -> Any:
    return client("apigateway")


def plan_ids_from_env() -> dict[str, str]:
    """The stack's usage plan ids (``USAGE_PLAN_BUSINESS`` ...), as the template gives the consumer."""
    return {tier: os.environ[f"USAGE_PLAN_{tier.upper()}"] for tier in TIERS}


def _prefix() -> str:
    return f"qrpro/{table()}/"


def tier_for(user_id: str) -> str | None:
    """The usage plan a user's keys belong on: the highest tier among the
    personal plan and every team's plan; None when none has API access."""
    user = accounts.get_user(user_id) or {}
    plans = [user.get("plan"), *(team.plan for team, _ in teams.memberships(user_id))]
    ranked = [p for p in plans if p in TIERS]
    return max(ranked, key=TIERS.index) if ranked else None


def _keys_of(user_id: str) -> Iterator[dict[str, Any]]:
    """The auth items of a user's live keys."""
    params = {"TableName": table(), "ConsistentRead": True,
              "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
              "ExpressionAttributeValues": {":pk": av(k.pk_user(user_id)), ":p": av("KEY#")}}
    for listing in query_items(params):
        auth = get_one(k.pk_apikey(listing["key_hash"]), "APIKEY")
        if auth is not None:
            yield auth


def _ignore(codes: set[str], call: Any, **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except ClientError as err:
        if error_code(err) not in codes:
            raise


def _record(auth: Mapping[str, Any], values: dict[str, Any], condition: str = "attribute_exists(pk)") -> None:
    """SET the given attributes on the auth item (REMOVE those given as None)."""
    kept = {n: v for n, v in values.items() if v is not None}
    parts = [f"SET {', '.join(f'#{n} = :{n}' for n in kept)}" if kept else "",
             f"REMOVE {', '.join(f'#{n}' for n in values if n not in kept)}" if len(kept) < len(values) else ""]
    extra = {"ExpressionAttributeValues": {f":{n}": av(v) for n, v in kept.items()}} if kept else {}
    ddb().update_item(TableName=table(), Key=key(auth["pk"], "APIKEY"), UpdateExpression=" ".join(filter(None, parts)),
                      ConditionExpression=condition,
                      ExpressionAttributeNames={f"#{n}": n for n in values}, **extra)


def sync_user(user_id: str, plan_ids: Mapping[str, str]) -> list[dict[str, Any]]:
    """Give every live key of ``user_id`` a usage key on the right plan (or
    none, when no plan of the user has API access). Idempotent: a key already
    right costs no API Gateway call. Each entry of the report says what
    changed (``change``: created, moved, removed) or why the key stays on the
    fallback key (``error``: limit_exceeded, rate_limited)."""
    target = tier_for(user_id)
    return [_sync_key(user_id, auth, target, plan_ids) for auth in _keys_of(user_id)]


def _sync_key(user_id: str, auth: dict[str, Any], target: str | None,
              plan_ids: Mapping[str, str]) -> dict[str, Any]:
    key_id, current, usage_key_id = auth["key_id"], auth.get("usage_plan"), auth.get("usage_key_id")
    out: dict[str, Any] = {"key_id": key_id, "usage_plan": target}
    if target is None:
        if usage_key_id:
            _ignore({"NotFoundException"}, _apigw().delete_api_key, apiKey=usage_key_id)
            _record(auth, {"usage_key": None, "usage_key_id": None, "usage_plan": None})
            out["change"] = "removed"
        return out
    if not usage_key_id:
        try:
            created = _apigw().create_api_key(name=f"{_prefix()}{key_id}", description=f"user {user_id}",
                                              enabled=True)
        except ClientError as err:
            if error_code(err) not in _ON_FALLBACK:
                raise
            return {"key_id": key_id, "usage_plan": None, "error": _ON_FALLBACK[error_code(err)]}
        usage_key_id, current = created["id"], None
        try:  # a concurrent sync of the same key (stream and repair tool) keeps the first gateway key
            _record(auth, {"usage_key": created["value"], "usage_key_id": usage_key_id, "usage_plan": None},
                    "attribute_exists(pk) AND attribute_not_exists(usage_key_id)")
        except ClientError as err:
            _ignore({"NotFoundException"}, _apigw().delete_api_key, apiKey=usage_key_id)
            if error_code(err) != "ConditionalCheckFailedException":
                raise
            fresh = get_one(auth["pk"], "APIKEY")
            return _sync_key(user_id, fresh, target, plan_ids) if fresh else {"key_id": key_id, "usage_plan": None}
        out["change"] = "created"
    if current != target:
        previous = plan_ids.get(str(current))
        if previous:
            _ignore({"NotFoundException"}, _apigw().delete_usage_plan_key, usagePlanId=previous, keyId=usage_key_id)
        _ignore({"ConflictException"}, _apigw().create_usage_plan_key,
                usagePlanId=plan_ids[target], keyId=usage_key_id, keyType="API_KEY")
        _record(auth, {"usage_plan": target})
        out.setdefault("change", "moved")
    return out


def remove_key(key_id: str) -> bool:
    """Delete the gateway key of a revoked customer key (found by its name); False if it had none."""
    name = f"{_prefix()}{key_id}"
    found = False
    for page in _apigw().get_paginator("get_api_keys").paginate(nameQuery=name):
        for item in page.get("items", []):
            if item.get("name") == name:
                _ignore({"NotFoundException"}, _apigw().delete_api_key, apiKey=item["id"])
                found = True
    return found


def mark_synced(pk: str, plan: str) -> None:
    """Record on a profile that its keys follow ``plan`` (unless the plan changed meanwhile): the
    consumer then skips the profile's other changes (codes_used, ...) without reading anything."""
    try:
        ddb().update_item(TableName=table(), Key=key(pk, k.PROFILE), UpdateExpression="SET synced_plan = :p",
                          ConditionExpression="#plan = :p", ExpressionAttributeNames={"#plan": "plan"},
                          ExpressionAttributeValues={":p": av(plan)})
    except ClientError as err:
        if error_code(err) != "ConditionalCheckFailedException":
            raise


def prune() -> list[str]:
    """Delete the API Gateway keys of revoked customer keys (``DELETE
    /api/keys/{id}`` removes only the table's items), freeing quota. Returns
    the deleted key ids."""
    deleted = []
    prefix = _prefix()
    for page in _apigw().get_paginator("get_api_keys").paginate(nameQuery=prefix):
        for item in page.get("items", []):
            if not str(item.get("name", "")).startswith(prefix):
                continue
            key_id = str(item["name"]).removeprefix(prefix)
            user_id = str(item.get("description", "")).removeprefix("user ")
            if get_one(k.pk_user(user_id), k.sk_key(key_id)) is None:
                _ignore({"NotFoundException"}, _apigw().delete_api_key, apiKey=item["id"])
                deleted.append(key_id)
    return deleted


def member_ids(team_id: str) -> list[str]:
    """Every member of a team (their keys follow the team's plan)."""
    params = {"TableName": table(), "ConsistentRead": True, "ProjectionExpression": "user_id",
              "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
              "ExpressionAttributeValues": {":pk": av(k.pk_team(team_id)), ":p": av("MEMBER#")}}
    return [str(item["user_id"]) for item in query_items(params)]


def all_user_ids() -> Iterator[str]:
    """Every user (an admin-only Scan of profiles; never on a request path)."""
    for page in ddb().get_paginator("scan").paginate(
            TableName=table(), FilterExpression="sk = :p AND begins_with(pk, :u)", ProjectionExpression="id",
            ExpressionAttributeValues={":p": av(k.PROFILE), ":u": av("USER#")}):
        for item in page.get("Items", []):
            yield item["id"]["S"]
