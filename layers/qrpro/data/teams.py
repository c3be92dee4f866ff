"""The teams repository, read side (docs/api.md section 9, docs/data-model.md).
Teams, members and links are written by ``qrpro.data.accounts`` (the admin
side); the API only reads them.

- profile ``TEAM#{tid}`` / ``PROFILE``: name, plan, member_count;
- member ``TEAM#{tid}`` / ``MEMBER#{uid}``: role, email, joined_at. It decides
  membership (the item ``accounts.resolve_caller`` reads too);
- link ``USER#{uid}`` / ``TEAM#{tid}``: only says where to look.

The rules (who sees which team, the order of lists) are ``qrpro.services.teams``'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import av, batch_get, from_item, get_one, key, query_items, table, unavailable_on_throttle


def _team_id(item: dict[str, Any]) -> str:
    return str(item["pk"]).removeprefix(k.pk_team(""))


@dataclass(frozen=True)
class Team:
    """A team's profile."""

    id: str
    plan: str
    name: str = ""
    member_count: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Team:
        return cls(id=item["id"], plan=item["plan"], name=item.get("name", ""),
                   member_count=int(item.get("member_count", 0)))


@dataclass(frozen=True)
class Member:
    """One user's membership of one team."""

    team_id: str
    user_id: str
    role: str
    email: str = ""
    joined_at: int | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Member:
        return cls(team_id=_team_id(item), user_id=item["user_id"],
                   role=item["role"], email=item.get("email", ""), joined_at=item.get("joined_at"))


def memberships(user_id: str) -> list[tuple[Team, Member]]:
    """Each team ``user_id`` is a member of, with the membership, in the order of
    the user's links: one Query of the links, then one BatchGetItem of each
    linked team's profile and member item. A stale link (no member item) is
    left out."""
    params: dict[str, Any] = {
        "TableName": table(), "ConsistentRead": True, "ProjectionExpression": "team_id",
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(k.pk_user(user_id)), ":p": av("TEAM#")}}
    team_ids = [str(item["team_id"]) for item in query_items(params)]
    if not team_ids:
        return []
    wanted = [key(k.pk_team(t), s) for t in team_ids for s in (k.PROFILE, k.sk_member(user_id))]
    profiles: dict[str, Team] = {}
    members: dict[str, Member] = {}
    for item in batch_get(wanted, consistent=True):
        if item["sk"] == k.PROFILE:
            profiles[_team_id(item)] = Team.from_item(item)
        else:
            members[_team_id(item)] = Member.from_item(item)
    return [(profiles[t], members[t]) for t in team_ids if t in profiles and t in members]


def member(team_id: str, user_id: str) -> Member | None:
    """The user's member item of the team (strongly consistent), or None."""
    with unavailable_on_throttle():
        out = ddb().get_item(TableName=table(), Key=key(k.pk_team(team_id), k.sk_member(user_id)),
                             ConsistentRead=True)
    item = from_item(out.get("Item"))
    return None if item is None else Member.from_item(item)


def profile(team_id: str) -> Team | None:
    item = get_one(k.pk_team(team_id), k.PROFILE)
    return None if item is None else Team.from_item(item)


def members(team_id: str) -> list[Member]:
    """Every member of the team, in key order."""
    params: dict[str, Any] = {
        "TableName": table(), "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(k.pk_team(team_id)), ":p": av("MEMBER#")}}
    return [Member.from_item(item) for item in query_items(params)]
