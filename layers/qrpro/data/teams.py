"""Team reads for the API (docs/api.md section 9) and the usage counters of a
scope (section 11). Teams, members and links are written by
``qrpro.data.accounts`` (the admin side); the API only reads them.

Membership is decided by the ``TEAM#{tid}`` / ``MEMBER#{uid}`` item, the same
item ``accounts.resolve_caller`` reads: a user's ``TEAM#`` link only says
where to look, so a stale link never shows a team the user left.
"""

from __future__ import annotations

from typing import Any

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
    unavailable_on_throttle,
)
from qrpro.domain.clock import month_bucket
from qrpro.domain.errors import NotFound
from qrpro.domain.groups import is_id


def _team(profile: dict[str, Any], member: dict[str, Any]) -> dict[str, Any]:
    return {"id": profile["id"], "name": profile.get("name", ""), "plan": profile["plan"],
            "role": member["role"], "member_count": int(profile.get("member_count", 0))}


def teams_of(user_id: str) -> list[dict[str, Any]]:
    """The teams ``user_id`` belongs to, by name: one Query of the user's
    links, then one BatchGetItem of each team's profile and membership."""
    params: dict[str, Any] = {
        "TableName": table(), "ConsistentRead": True, "ProjectionExpression": "team_id",
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(k.pk_user(user_id)), ":p": av("TEAM#")}}
    team_ids = [str(item["team_id"]) for item in query_items(params)]
    if not team_ids:
        return []
    wanted = [key(k.pk_team(t), s) for t in team_ids for s in (k.PROFILE, k.sk_member(user_id))]
    profiles: dict[str, dict[str, Any]] = {}
    members: dict[str, dict[str, Any]] = {}
    for item in batch_get(wanted, consistent=True):
        team_id = item["pk"].removeprefix("TEAM#")
        (profiles if item["sk"] == k.PROFILE else members)[team_id] = item
    teams = [_team(profiles[t], members[t]) for t in team_ids if t in profiles and t in members]
    return sorted(teams, key=lambda t: (t["name"].lower(), t["id"]))


def _membership(user_id: str, team_id: str) -> dict[str, Any]:
    """The caller's member item of the team, or 404 (not a member looks like no team)."""
    if not is_id(team_id):
        raise NotFound()
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(k.pk_team(team_id), k.sk_member(user_id)),
                             ConsistentRead=True)
    member = from_item(out.get("Item"))
    if member is None:
        raise NotFound()
    return member


def team_for(user_id: str, team_id: str) -> dict[str, Any]:
    """One team of the caller's, with the caller's role in it."""
    member = _membership(user_id, team_id)
    return _team(or_not_found(get_one(k.pk_team(team_id), k.PROFILE)), member)


def members_of(user_id: str, team_id: str) -> list[dict[str, Any]]:
    """The members of a team the caller belongs to, earliest first."""
    _membership(user_id, team_id)
    params: dict[str, Any] = {
        "TableName": table(), "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(k.pk_team(team_id)), ":p": av("MEMBER#")}}
    members = [{"user_id": item["user_id"], "email": item.get("email", ""), "role": item["role"],
                "joined_at": item.get("joined_at")} for item in query_items(params)]
    return sorted(members, key=lambda m: (m["joined_at"] or 0, m["email"].lower(), m["user_id"]))


# -- usage of a scope (user or team) --------------------------------------------------

def scans_this_month(scope: str, now: int) -> tuple[int, str]:
    """The scope's scan counter for the current UTC month (``SAGG#{scope}`` /
    ``M#{yyyy-mm}``, attribute ``used``: the counter the aggregator adds to and
    the cap check reads). 0 when no scan was counted this month."""
    month = month_bucket(now)
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(k.pk_scope_agg(scope), k.sk_month(month)),
                             ConsistentRead=True, ProjectionExpression="#u", ExpressionAttributeNames={"#u": "used"})
    item = from_item(out.get("Item")) or {}
    return int(item.get("used", 0)), month
