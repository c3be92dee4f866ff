"""Powertools' packages without their ``__init__``: each name on first use.

``aws_lambda_powertools/event_handler/__init__.py`` imports every resolver
Powertools has (AppSync, AppSync Events, Bedrock agents, VPC Lattice...), and
with them ``asyncio``; ``utilities/data_classes/__init__.py`` imports the data
class of every event source Lambda has (Kafka, S3, SES, CloudWatch...). A
function needs one or two of them, and pays for all of them at every cold
start. :func:`install` registers these packages without running their
``__init__``: a name the ``__init__`` would have imported from one of its
submodules (``from .api_gateway import APIGatewayRestResolver``) imports that
submodule when it is first asked for; submodules import as usual; any other
name runs the package's own ``__init__`` first, so code that needs the rest
still gets it. Every function that uses Powertools calls it from its package
``__init__``, before anything imports Powertools; tests/unit/test_cold_start.py
checks the import paths and that every name still resolves.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from types import ModuleType

PACKAGES = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes")
# `from .submodule import A, B as C` (or `from <package>.submodule ...`), parenthesised or not.
_IMPORT = r"^from (?:\.|{package}\.)([\w.]+) import (?:\(([^)]*)\)|([^\n(]+))$"


def _names(package: str, source: str) -> dict[str, str]:
    """Each name a package's ``__init__`` imports from one of its submodules: name -> submodule."""
    out: dict[str, str] = {}
    for match in re.finditer(_IMPORT.format(package=re.escape(package)), source, re.MULTILINE):
        for part in (match.group(2) or match.group(3)).split(","):
            words = part.split("#")[0].split()
            if words:
                out[words[-1]] = match.group(1)  # `A` or `A as B`: the name bound is the last word
    return out


def _install(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.origin is None:  # pragma: no cover - a runtime dependency
        raise ImportError(name)
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader
    with open(spec.origin, encoding="utf-8") as source:
        names = _names(name, source.read())

    class Lazy(ModuleType):
        def __getattr__(self, attr: str) -> object:
            if attr in names:
                return getattr(importlib.import_module(f"{name}.{names[attr]}"), attr)
            if importlib.util.find_spec(f"{name}.{attr}") is not None:
                raise AttributeError(attr)  # a submodule: the import system loads it
            loader.exec_module(self)  # any other name: the package as Powertools wrote it
            return getattr(self, attr)

        def __setattr__(self, attr: str, value: object) -> None:
            # A submodule named like what the __init__ takes from it (data_classes.event_source, the
            # decorator): the import system binds the submodule, the __init__ would rebind the name.
            if isinstance(value, ModuleType) and names.get(attr) == attr and hasattr(value, attr):
                value = getattr(value, attr)
            super().__setattr__(attr, value)

    package.__class__ = Lazy
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    setattr(importlib.import_module(parent), child, package)


def install() -> None:
    """Idempotent; a package already imported (the usual way or this one) is left as it is."""
    for name in PACKAGES:
        _install(name)
