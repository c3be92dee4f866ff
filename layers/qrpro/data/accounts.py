"""Accounts, teams and memberships: the admin side writes them, every API
request reads them to find the caller's scope, plan and role."""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import (
    Cancelled,
    Transaction,
    av,
    error_code,
    from_item,
    get_one,
    key,
    table,
    to_item,
    unavailable_on_throttle,
)
from qrpro.data.teams import member  # the one reader of the member item
from qrpro.domain.errors import NotFound
from qrpro.domain.plans import PLAN_GRACE_SECONDS, PLAN_NAMES, PlanStatus
from qrpro.domain.scope import ROLES, Caller, team_scope, user_scope


class AccountError(Exception):
    """An admin operation that cannot be done (duplicate email, unknown user...)."""


def create_account(email: str, plan: str, now: int) -> str:
    if plan not in PLAN_NAMES:
        raise AccountError(f"unknown plan {plan!r}; one of {', '.join(PLAN_NAMES)}")
    email = email.strip()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"not an email address: {email!r}")
    user_id = str(uuid.uuid4())
    profile = {
        "pk": k.pk_user(user_id), "sk": k.PROFILE, "type": "user", "id": user_id,
        "email": email, "plan": plan, "plan_status": PlanStatus.ACTIVE.value,
        "plan_status_at": now, "codes_used": 0, "created_at": now,
    }
    try:
        (Transaction()
         .add("email", {"Put": {"TableName": table(), "ConditionExpression": "attribute_not_exists(pk)",
                                "Item": to_item({"pk": k.pk_email(email), "sk": "EMAIL", "user_id": user_id})}})
         .add("profile", {"Put": {"TableName": table(), "Item": to_item(profile),
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
         .run())
    except Cancelled as cancel:
        if "email" in cancel.failed:
            raise AccountError(f"an account with email {email!r} exists already") from cancel
        raise
    return user_id


def get_user(user_id: str) -> dict[str, Any] | None:
    return get_one(k.pk_user(user_id), k.PROFILE)


def get_team(team_id: str) -> dict[str, Any] | None:
    return get_one(k.pk_team(team_id), k.PROFILE)


def _require_user(user_id: str) -> dict[str, Any]:
    user = get_user(user_id)
    if user is None:
        raise AccountError(f"no user {user_id}")
    return user


def create_team(owner_id: str, name: str, plan: str, now: int) -> str:
    if plan not in PLAN_NAMES:
        raise AccountError(f"unknown plan {plan!r}; one of {', '.join(PLAN_NAMES)}")
    owner = _require_user(owner_id)
    team_id = str(uuid.uuid4())
    team = {"pk": k.pk_team(team_id), "sk": k.PROFILE, "type": "team", "id": team_id, "name": name, "plan": plan,
            "plan_status": PlanStatus.ACTIVE.value, "plan_status_at": now, "owner_id": owner_id, "member_count": 1,
            "codes_used": 0, "created_at": now}
    tx = Transaction().add("team", {"Put": {"TableName": table(), "Item": to_item(team),
                                            "ConditionExpression": "attribute_not_exists(pk)"}})
    _membership(tx, team_id, owner_id, owner["email"], "owner", now).run()
    return team_id


def _membership(tx: Transaction, team_id: str, user_id: str, email: str, role: str, now: int) -> Transaction:
    """The member item (named ``member``: only if the user is not one yet) and the user's link to the team."""
    return (tx.add("member", {"Put": {"TableName": table(), "ConditionExpression": "attribute_not_exists(pk)",
                                      "Item": to_item({"pk": k.pk_team(team_id), "sk": k.sk_member(user_id),
                                                       "type": "member", "user_id": user_id, "email": email,
                                                       "role": role, "joined_at": now})}})
            .add("link", {"Put": {"TableName": table(), "Item": to_item({
                "pk": k.pk_user(user_id), "sk": k.sk_team_link(team_id), "type": "team_link",
                "team_id": team_id, "role": role, "joined_at": now})}}))


def add_member(team_id: str, user_id: str, role: str, now: int) -> None:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if get_team(team_id) is None:
        raise AccountError(f"no team {team_id}")
    user = _require_user(user_id)
    if member(team_id, user_id) is None:
        tx = _membership(Transaction(), team_id, user_id, user["email"], role, now).add("count", {"Update": {
            "TableName": table(), "Key": key(k.pk_team(team_id), k.PROFILE),
            "UpdateExpression": "ADD member_count :one", "ExpressionAttributeValues": {":one": av(1)}}})
        try:
            tx.run()
            return
        except Cancelled as cancel:
            if "member" not in cancel.failed:
                raise
            # joined meanwhile (a concurrent add): counted once, by the other call; the role is set below
    # A role change keeps the join date and the member count.
    for item_key in (key(k.pk_team(team_id), k.sk_member(user_id)), key(k.pk_user(user_id), k.sk_team_link(team_id))):
        ddb().update_item(TableName=table(), Key=item_key, UpdateExpression="SET #r = :r",
                          ExpressionAttributeNames={"#r": "role"}, ExpressionAttributeValues={":r": av(role)})


def use_team(user_id: str, team_id: str | None) -> None:
    _require_user(user_id)
    if team_id is None:
        ddb().update_item(TableName=table(), Key=key(k.pk_user(user_id), k.PROFILE),
                          UpdateExpression="REMOVE current_team_id")
        return
    if member(team_id, user_id) is None:
        raise AccountError(f"user {user_id} is not a member of team {team_id}")
    ddb().update_item(TableName=table(), Key=key(k.pk_user(user_id), k.PROFILE),
                      UpdateExpression="SET current_team_id = :t",
                      ExpressionAttributeValues={":t": av(team_id)})


def set_plan(scope: str, plan: str | None, status: str | None, now: int) -> dict[str, Any]:
    """Change a user's or team's plan and/or plan status.

    Entering ``grace`` records when, and puts the profile on the due-date index
    so the scheduled job expires it 90 days later; leaving it takes it off.
    """
    if plan is not None and plan not in PLAN_NAMES:
        raise AccountError(f"unknown plan {plan!r}; one of {', '.join(PLAN_NAMES)}")
    if status is not None and status not in {s.value for s in PlanStatus}:
        raise AccountError(f"unknown status {status!r}; one of active, grace, expired")
    sets, removes, values = [], [], {}
    if plan is not None:
        sets.append("#plan = :plan")
        values[":plan"] = av(plan)
    if status is not None:
        sets += ["plan_status = :st", "plan_status_at = :now"]
        values[":st"], values[":now"] = av(status), av(now)
        if status == PlanStatus.GRACE:
            sets += [f"{k.GSI1PK} = :due", f"{k.GSI1SK} = :duesk"]
            values[":due"] = av(k.GRACE_PLANS)
            values[":duesk"] = av(k.due_sk(now + PLAN_GRACE_SECONDS, scope))
        else:
            removes += [k.GSI1PK, k.GSI1SK]
    if not sets:
        raise AccountError("nothing to change: give --plan and/or --status")
    expr = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    params: dict[str, Any] = {
        "TableName": table(), "Key": key(scope, k.PROFILE), "UpdateExpression": expr,
        "ExpressionAttributeValues": values, "ConditionExpression": "attribute_exists(pk)",
        "ReturnValues": "ALL_NEW",
    }
    if plan is not None:
        params["ExpressionAttributeNames"] = {"#plan": "plan"}
    try:
        out = ddb().update_item(**params)
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            raise AccountError(f"no such account or team: {scope}") from err
        raise
    return from_item(out["Attributes"]) or {}


def resolve_caller(user_id: str, key_id: str) -> Caller:
    """The caller's scope, plan and role, read strongly consistent on each request.

    One GetItem for a personal context; one more BatchGetItem for a team.
    A user whose team membership ended falls back to the personal context.
    """
    with unavailable_on_throttle():
        user = get_user(user_id)
        if user is None:
            raise NotFound("user not found")
        team_id = user.get("current_team_id")
        if team_id:
            out = ddb().batch_get_item(RequestItems={table(): {
                "Keys": [key(k.pk_team(team_id), k.PROFILE), key(k.pk_team(team_id), k.sk_member(user_id))],
                "ConsistentRead": True}})
            items = [from_item(i) or {} for i in out["Responses"].get(table(), [])]
            team = next((i for i in items if i.get("sk") == k.PROFILE), None)
            member = next((i for i in items if i.get("sk") == k.sk_member(user_id)), None)
            if team is not None and member is not None:
                return Caller(user_id=user_id, key_id=key_id, email=user["email"], scope=team_scope(team_id),
                              plan_name=team["plan"], plan_status=team["plan_status"], team_id=team_id,
                              team_name=team.get("name"), role=member["role"])
    return Caller(user_id=user_id, key_id=key_id, email=user["email"], scope=user_scope(user_id),
                  plan_name=user["plan"], plan_status=user["plan_status"])

