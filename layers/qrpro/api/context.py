"""What the pipeline hands to routes: the caller and the request's clock."""

from __future__ import annotations

from typing import Any

from qrpro.domain.scope import Caller


def caller(router: Any) -> Caller:
    found: Caller = router.context["caller"]
    return found


def mutator(router: Any) -> Caller:
    """The caller of a route that changes codes, groups or webhooks: a team
    member without a mutating role gets ``403 insufficient_role`` here, before
    anything else runs. Every such route starts with this call."""
    found = caller(router)
    found.require_mutation()
    return found


def now(router: Any) -> int:
    return int(router.context["now"])
