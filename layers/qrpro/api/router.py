"""Powertools' router, also keeping each route's method and path pattern, and
its response models for the document only.

- The api answers ``405 method_not_allowed`` (not 404) for a path it serves
  under other methods (docs/api.md section 5). Powertools keeps its route
  tables private, so every route module declares its routes on this router and
  the error handlers read :func:`methods_of` instead.
- A route names its success model (``errors(ok="Code")``: a class of
  ``qrpro.api.models``). Those models only document: Powertools would still
  build each one at a route's first request, and importing them costs every
  cold start ~25 ms. So the routes serving requests are registered without
  them, and :meth:`Router.documented` registers the same functions with them
  for the OpenAPI document (``lambdas/api/docs.py``).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

_PARAMETER = re.compile(r"<\w+>")
_ROUTE = inspect.signature(APIGatewayRouter.route)
MODELS = "qrpro.api.models"


def _responses(responses: dict[int, Any] | None, resolve: bool) -> dict[int, Any] | None:
    """``responses`` with each model named by a string resolved (``resolve``) or left out."""
    if not responses:
        return responses
    out: dict[int, Any] = {}
    for status, response in responses.items():
        content = {}
        for media, schema in (response.get("content") or {}).items():
            model = schema.get("model")
            if isinstance(model, str):
                if not resolve:
                    continue
                schema = {**schema, "model": getattr(importlib.import_module(MODELS), model)}
            content[media] = schema
        out[status] = {**response, "content": content} if content else {
            k: v for k, v in response.items() if k != "content"}
    return out


class Router(APIGatewayRouter):
    def __init__(self) -> None:
        super().__init__()
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        self.declared: list[tuple[dict[str, Any], Callable[..., Any]]] = []

    def route(self, rule: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        pattern = re.compile("^" + _PARAMETER.sub("[^/]+", re.escape(rule)) + "$")
        for verb in [method] if isinstance(method, str) else method:
            self.patterns.append((verb.upper(), pattern))
        arguments = _ROUTE.bind(self, rule, method, *args, **kwargs).arguments
        arguments.pop("self")
        register = super().route(**{**arguments, "responses": _responses(arguments.get("responses"), False)})

        def declare(func: Callable[..., Any]) -> Callable[..., Any]:
            self.declared.append((arguments, func))
            return register(func)

        return declare

    def documented(self) -> APIGatewayRouter:
        """The same routes, with their response models: for the OpenAPI document only."""
        router = APIGatewayRouter()
        for arguments, func in self.declared:
            router.route(**{**arguments, "responses": _responses(arguments.get("responses"), True)})(func)
        return router


def methods_of(routers: Iterable[Router], path: str) -> set[str]:
    """The methods some route of ``routers`` serves at ``path``."""
    return {verb for router in routers for verb, pattern in router.patterns if pattern.match(path)}
