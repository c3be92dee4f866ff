"""User and keys (docs/api.md section 11, but export)."""

from __future__ import annotations

from typing import Any

from qrpro.api.context import caller, now
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.data import caps, codes, ratelimit
from qrpro.domain.clock import month_bucket, next_midnight

router = Router()


@router.get("/api/user", operation_id="getUser",
            tags=["User and keys"], summary="The signed-in user, scope and plan limits",
            responses=errors(ok="User"))
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


@router.get("/api/user/usage", operation_id="getUsage", tags=["User and keys"],
            summary="Today's requests of this key, codes against the plan cap, scans this month",
            responses=errors(ok="Usage"))
def get_usage() -> dict[str, Any]:
    """The same counters the rate limiter, the plan cap and the scan cap enforce,
    read from the same items (this request is already counted)."""
    c, at = caller(router), now(router)
    month = month_bucket(at)
    return {
        "requests_today": {"used": ratelimit.used_today(c.key_id, at), "limit": c.plan.requests_per_day,
                           "reset_at": next_midnight(at)},
        "codes": {"used": codes.codes_used(c.scope), "limit": c.plan.codes},
        "scans_this_month": {"used": caps.scans_used(c.scope, month), "cap": c.plan.scans_per_month, "month": month},
    }
