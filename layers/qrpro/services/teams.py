"""Teams: the use cases of docs/api.md section 9. Membership is managed in the
dashboard (here the admin CLI); the API reads it, and only the teams the
caller is a member of: any other team id answers ``404``, like a team that
does not exist.
"""

from __future__ import annotations

from typing import Any

from qrpro.data import teams as repo
from qrpro.data.table import or_not_found
from qrpro.data.teams import Member, Team
from qrpro.domain.errors import NotFound
from qrpro.domain.ids import is_id


def _public(team: Team, member: Member) -> dict[str, Any]:
    """The team object of docs/api.md, with the caller's role in it."""
    return {"id": team.id, "name": team.name, "plan": team.plan, "role": member.role,
            "member_count": team.member_count}


def _membership(user_id: str, team_id: str) -> Member:
    """The caller's membership of the team, or 404 (not a member looks like no team)."""
    if not is_id(team_id):
        raise NotFound()
    return or_not_found(repo.member(team_id, user_id))


def teams_of(user_id: str) -> list[dict[str, Any]]:
    """The caller's teams, by name (case-insensitive), then id."""
    teams = [_public(team, member) for team, member in repo.memberships(user_id)]
    return sorted(teams, key=lambda t: (t["name"].lower(), t["id"]))


def team_for(user_id: str, team_id: str) -> dict[str, Any]:
    """One of the caller's teams."""
    member = _membership(user_id, team_id)
    return _public(or_not_found(repo.profile(team_id)), member)


def members_of(user_id: str, team_id: str) -> list[dict[str, Any]]:
    """The members of one of the caller's teams, earliest first (then by email, then id)."""
    _membership(user_id, team_id)
    members = sorted(repo.members(team_id), key=lambda m: (m.joined_at or 0, m.email.lower(), m.user_id))
    return [{"user_id": m.user_id, "email": m.email, "role": m.role, "joined_at": m.joined_at} for m in members]
