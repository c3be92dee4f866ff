"""User and keys (contract section 11, but export)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from qrpro.api.context import caller

router = APIGatewayRouter()


@router.get("/api/user", tags=["User and keys"], summary="The signed-in user, scope and plan limits")
def get_user() -> dict[str, Any]:
    c = caller(router)
    return {
        "id": c.user_id,
        "email": c.email,
        "plan": c.plan_name,
        "plan_status": c.plan_status,
        "scope": c.scope_json(),
        "current_team_id": c.team_id,
        "limits": c.plan.limits(),
    }
