"""Bulk import payloads (docs/api.md 6.6): one object, an array, `{"codes": [...]}`
or a `codes.csv`; validated as a whole before anything is written."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from qrpro.domain.code_bodies import CodeCreate
from qrpro.domain.errors import PayloadTooLarge, ValidationFailed

MAX_ITEMS = 1000


@cache
def _items() -> TypeAdapter[list[CodeCreate]]:
    return TypeAdapter(list[CodeCreate])  # built on the first import, not at every cold start


def _path(loc: tuple[Any, ...]) -> str:
    out = "codes"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith("function-"):
            out += f".{part}"
    return out


def items_of(body: str, content_type: str) -> list[dict[str, Any]]:
    """The raw items of an import body, before validation."""
    if content_type == "text/csv":
        from qrpro.domain.csvio import parse_codes_csv

        return parse_codes_csv(body)
    try:
        data = json.loads(body or "null")
    except ValueError as err:
        raise ValidationFailed("body", "the body is not valid JSON") from err
    if isinstance(data, dict) and "codes" in data:  # the {"codes": [...]} form: nothing else beside it
        extra = sorted(set(data) - {"codes"})
        if extra:
            raise ValidationFailed(extra[0], "unknown field (send {\"codes\": [...]} alone)")
        data = data["codes"]
        if not isinstance(data, list):
            raise ValidationFailed("codes", "must be an array of codes")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValidationFailed("codes", "send a code, an array of codes or {\"codes\": [...]}")
    return data


def validate(items: list[Any]) -> list[dict[str, Any]]:
    """Every item checked first; the first problem is reported as ``codes[i].field``."""
    if len(items) > MAX_ITEMS:
        raise PayloadTooLarge(f"at most {MAX_ITEMS} codes per import")
    if not items:
        raise ValidationFailed("codes", "no codes to import")
    try:
        models = _items().validate_python(items)
    except ValidationError as err:
        first = err.errors()[0]
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix(
            "Value error, ")
        raise ValidationFailed(_path(first["loc"]), message) from err
    return [m.model_dump(exclude_unset=True) for m in models]
