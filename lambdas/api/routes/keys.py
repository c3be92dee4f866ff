"""API keys (docs/api.md section 11): the caller's own keys, whatever the team
context (``qrpro.services.keys``)."""

from __future__ import annotations

from typing import Any

from qrpro.api.context import caller
from qrpro.api.openapi import errors
from qrpro.api.router import Router
from qrpro.services import keys

router = Router()
TAGS = ["User and keys"]


@router.get("/api/keys", operation_id="listKeys",
            tags=TAGS, summary="The caller's API keys (never the token nor its hash)",
            responses=errors(ok="KeyList"))
def list_keys() -> dict[str, Any]:
    c = caller(router)
    return {"keys": keys.list_keys(c.user_id), "allowed": c.plan.api, "plan": c.plan_name}


@router.delete("/api/keys/<key_id>", operation_id="revokeKey",
               tags=TAGS, summary="Revoke one of the caller's keys, effective immediately",
               responses=errors(404, ok="KeyRevoked"))
def revoke_key(key_id: str) -> dict[str, Any]:
    keys.revoke(caller(router).user_id, key_id)
    return {"id": key_id, "revoked": True}
