"""Teams (docs/api.md section 9): membership is managed in the dashboard (here the
admin CLI); the API reads it. Teams are the user's, whatever the current context."""

from __future__ import annotations

from typing import Any

from qrpro.api.context import caller
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.services import teams

router = Router()
TAGS = ["Teams"]


@router.get("/api/teams", operation_id="listTeams",
            tags=TAGS, summary="The caller's teams and the current team context",
            responses=errors(ok="TeamList"))
def list_teams() -> dict[str, Any]:
    c = caller(router)
    return {"teams": teams.teams_of(c.user_id), "current_team_id": c.team_id}


@router.get("/api/teams/<team_id>", operation_id="getTeam", tags=TAGS, summary="One of the caller's teams",
            responses=errors(404, ok="Team"))
def get_team(team_id: str) -> dict[str, Any]:
    return teams.team_for(caller(router).user_id, team_id)


@router.get("/api/teams/<team_id>/members", operation_id="listTeamMembers",
            tags=TAGS, summary="The members of one of the caller's teams",
            responses=errors(404, ok="MemberList"))
def team_members(team_id: str) -> dict[str, Any]:
    return {"members": teams.members_of(caller(router).user_id, team_id)}
