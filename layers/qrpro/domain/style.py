"""``style_json``: the styling a code carries for its QR image (docs/api.md 6.9).

A string holding a JSON object of at most 8 KiB with only these keys:

- ``dark``, ``light``: CSS hex colours ``#rgb`` or ``#rrggbb``; ``dark`` must be
  darker than ``light`` (inverted codes scan badly) and their WCAG contrast
  ratio at least 3:1 (a key left out counts as its default),
- ``error``: the minimum error-correction level, ``l``, ``m``, ``q`` or ``h``,
- ``scale``: integer 1..SCALE_MAX (pixels per module in PNG and SVG, points in PDF),
- ``border``: integer 0..20 (quiet zone, in modules).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from typing_extensions import TypeAliasType

from qrpro.domain.errors import ValidationFailed

FIELD = "style_json"
# The image formats and variants of GET /api/codes/{id}/qr (named schemas in the OpenAPI document).
QrFormat = TypeAliasType("QrFormat", Literal["svg", "png", "pdf"])
QrVariant = TypeAliasType("QrVariant", Literal["dynamic", "static"])
MAX_BYTES = 8192
# The largest scale (the API's 1-50). The worst case PNG at 50 (a 2,048-character
# URL: version 38, frame, border 20, 10,550 x 12,250 px) renders in about 0.8 s and
# 45 MB peak RSS on the dev machine (benchmarks/bench_qr.py, docs/qr-images.md).
# Vector formats cost the same at any scale.
SCALE_MAX = 50
BORDER_MAX = 20
MIN_CONTRAST = 3.0
ERROR_LEVELS = ("l", "m", "q", "h")
KEYS = ("dark", "light", "error", "scale", "border")
DEFAULTS: dict[str, Any] = {"dark": "#000000", "light": "#ffffff", "error": "m", "scale": 10, "border": 4}

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed(FIELD, message)


def normalise_colour(value: str) -> str:
    """``#ABC`` → ``#aabbcc``; the caller has checked the syntax."""
    value = value.lower()
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value


def is_colour(value: Any) -> bool:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of ``#rrggbb``."""
    out = 0.0
    for weight, i in ((0.2126, 1), (0.7152, 3), (0.0722, 5)):
        c = int(colour[i:i + 2], 16) / 255
        c = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
        out += weight * c
    return out


def contrast_ratio(a: str, b: str) -> float:
    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def check_colours(dark: str, light: str) -> None:
    """Raise ValidationFailed when ``dark`` on ``light`` would not scan reliably."""
    if luminance(dark) > luminance(light):
        raise _fail(f"dark ({dark}) must be darker than light ({light}); inverted codes are not supported")
    ratio = contrast_ratio(dark, light)
    if ratio < MIN_CONTRAST:
        raise _fail(f"dark ({dark}) and light ({light}) contrast is {ratio:.2f}:1; at least 3:1 is needed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _fail(f"key {key!r} appears more than once")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise _fail(f"{name} is not valid JSON")


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(f"{key} must be an integer from {lo} to {hi}")
    return value


def parse_style_json(value: str) -> dict[str, Any]:
    """Validate ``style_json`` and return its keys, normalised (colours as
    lowercase ``#rrggbb``). Keys left out are absent from the result (see
    DEFAULTS). Raises ``ValidationFailed("style_json", ...)``."""
    if not isinstance(value, str):
        raise _fail("must be a string holding a JSON object")
    if len(value.encode("utf-8")) > MAX_BYTES:
        raise _fail(f"must be at most {MAX_BYTES} bytes")
    try:
        obj = json.loads(value, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except ValueError:  # JSONDecodeError (ValidationFailed from the hooks passes through)
        raise _fail("must be a JSON object (the string is not valid JSON)") from None
    except RecursionError:
        raise _fail("must be a JSON object (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise _fail("must be a JSON object")
    unknown = sorted(k for k in obj if k not in KEYS)
    if unknown:
        raise _fail(f"unknown key {unknown[0]!r} (allowed: {', '.join(KEYS)})")
    out: dict[str, Any] = {}
    for key in ("dark", "light"):
        if key in obj:
            if not is_colour(obj[key]):
                raise _fail(f"{key} must be a CSS hex colour (#rgb or #rrggbb)")
            out[key] = normalise_colour(obj[key])
    if "error" in obj:
        if obj["error"] not in ERROR_LEVELS:
            raise _fail("error must be one of l, m, q, h")
        out["error"] = obj["error"]
    if "scale" in obj:
        out["scale"] = _int("scale", obj["scale"], 1, SCALE_MAX)
    if "border" in obj:
        out["border"] = _int("border", obj["border"], 0, BORDER_MAX)
    if "dark" in out or "light" in out:
        check_colours(out.get("dark", DEFAULTS["dark"]), out.get("light", DEFAULTS["light"]))
    return out


def resolve(style_json: str | None) -> dict[str, Any]:
    """The full style of a code: DEFAULTS overlaid with its ``style_json``."""
    out = dict(DEFAULTS)
    if style_json is not None:
        out.update(parse_style_json(style_json))
    return out
