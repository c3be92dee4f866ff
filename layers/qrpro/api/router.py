"""Powertools' router, also keeping each route's method and path pattern.

The api answers ``405 method_not_allowed`` (not 404) for a path it serves
under other methods (docs/api.md section 5). Powertools keeps its route
tables private, so every route module declares its routes on this router and
the error handlers read :func:`methods_of` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

_PARAMETER = re.compile(r"<\w+>")


class Router(APIGatewayRouter):
    def __init__(self) -> None:
        super().__init__()
        self.patterns: list[tuple[str, re.Pattern[str]]] = []

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        pattern = re.compile("^" + _PARAMETER.sub("[^/]+", re.escape(rule)) + "$")
        for verb in [method] if isinstance(method, str) else method:
            self.patterns.append((verb.upper(), pattern))
        return super().route(rule, method, *args, **kwargs)


def methods_of(routers: Iterable[Router], path: str) -> set[str]:
    """The methods some route of ``routers`` serves at ``path``."""
    return {verb for router in routers for verb, pattern in router.patterns if pattern.match(path)}
