"""What the pipeline hands to routes: the caller and the request's clock."""

from __future__ import annotations

from typing import Any

from qrpro.domain.scope import Caller


def caller(router: Any) -> Caller:
    found: Caller = router.context["caller"]
    return found


def now(router: Any) -> int:
    return int(router.context["now"])
