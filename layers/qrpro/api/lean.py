"""Powertools' REST resolver without the rest of its ``event_handler`` package.

``aws_lambda_powertools/event_handler/__init__.py`` imports every resolver
Powertools has (AppSync, AppSync Events, Bedrock agents, VPC Lattice...), and
with them ``asyncio``: about 30 ms of every cold start of a function that
serves REST only. :func:`install` registers the package without running that
``__init__``: its submodules import as usual, the names the REST resolver
defines (``APIGatewayRestResolver``, ``Response``...) resolve from
``api_gateway``, and any other name runs the package's own ``__init__`` first,
so code that needs the rest still gets it. The api and export functions call
it from their package ``__init__`` (before anything imports Powertools' event
handler); tests/unit/test_cold_start.py checks their import path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

PACKAGE = "aws_lambda_powertools.event_handler"


def install() -> None:
    """Idempotent; a no-op once the package is imported (the usual way or this one)."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:  # pragma: no cover - Powertools is a runtime dependency
        raise ImportError(PACKAGE)
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str) -> object:
        if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            raise AttributeError(name)  # a submodule: the import system loads it
        rest = importlib.import_module(f"{PACKAGE}.api_gateway")
        if hasattr(rest, name):
            return getattr(rest, name)
        loader.exec_module(package)  # any other name: the package as Powertools wrote it
        return getattr(package, name)

    loader = spec.loader
    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
    parent: ModuleType = sys.modules[PACKAGE.rpartition(".")[0]]
    parent.event_handler = package  # type: ignore[attr-defined]
